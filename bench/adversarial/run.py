#!/usr/bin/env python3
"""Adversarial pass over the `superficial` command (see README.md beside this file).

Runs the command as a user does (separate processes) against hostile inputs, kills at random points,
full and read-only disks (small tmpfs mounts: needs root), symlinked model folders and a misbehaving
judge server on loopback. Prints one line per case and ends with "N passed, M failed".
"""
import argparse, hashlib, http.server, json, os, random, shutil, signal, socketserver, struct
import subprocess, sys, tempfile, threading, time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CLI = os.path.join(ROOT, "src", "Superficial.Cli", "bin", "Release", "net10.0", "Superficial.Cli.dll")
results = []  # (group, name, ok, detail)


def run(args, env=None, timeout=600, kill_after=None, sig=signal.SIGKILL):
    """Runs the CLI; returns (exit code, output, seconds). With kill_after, sends sig after that many seconds."""
    e = dict(os.environ, **(env or {}))
    e["COLUMNS"] = "200"
    start = time.time()
    p = subprocess.Popen(["dotnet", CLI] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, text=True,
                         errors="replace")
    if kill_after is not None:
        try:
            out, _ = p.communicate(timeout=kill_after)
            return p.returncode, out, time.time() - start
        except subprocess.TimeoutExpired:
            p.send_signal(sig)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
        return -999, out + "\n[timed out]", time.time() - start
    return p.returncode, out, time.time() - start


def record(group, name, ok, detail=""):
    results.append((group, name, ok, detail))
    print(f"{'PASS' if ok else 'FAIL'} {group}: {name}" + ("" if ok else f"\n     {detail[:1500]}"), flush=True)


def clear_error(code, out, *needles):
    """Exit 2 (a user error), a message with the needles, no stack trace, no crash."""
    flat = out.replace("\n", "")  # the console wraps long lines (paths) at its width
    bad = [n for n in needles if n.lower() not in flat.lower()]
    trace = "   at " in out or "Unhandled exception" in out
    return code == 2 and not bad and not trace, f"exit {code}; missing {bad}; trace {trace}; output: {out[-800:]}"


def files_equal(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def tree_digest(folder, pattern_ok=lambda n: True):
    h = {}
    for dirpath, _, names in os.walk(folder):
        for n in sorted(names):
            if pattern_ok(n):
                p = os.path.join(dirpath, n)
                h[os.path.relpath(p, folder)] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return h


def leftovers(folder):
    return [os.path.join(d, n) for d, _, names in os.walk(folder) for n in names if ".tmp-" in n]


def mount_tmpfs(path, size, ro=False):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}" + (",ro" if ro else ""), "tmpfs", path], check=True)


def umount(path):
    subprocess.run(["umount", "-l", path], check=False)


# ---------------------------------------------------------------- a misbehaving judge on loopback

class Judge:
    """Chat-completions server on 127.0.0.1 whose behaviour is switched by `mode`; counts questions by prompt."""

    def __init__(self):
        self.mode = "ok"
        self.asked = {}      # prompt sha -> requests
        self.answered = {}   # prompt sha -> well-formed verdicts sent
        self.cache_keys_asked = set()  # the client's judge-cache key of every prompt asked (judge model "m")
        self.lock = threading.Lock()
        judge = self

        class H(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    prompt = json.loads(body)["messages"][0]["content"]
                except Exception:
                    prompt = ""
                key = hashlib.sha256(prompt.encode()).hexdigest()
                with judge.lock:
                    judge.asked[key] = judge.asked.get(key, 0) + 1
                    judge.cache_keys_asked.add(hashlib.sha256(("m\0" + prompt).encode()).hexdigest())
                mode = judge.mode
                if mode == "slow":
                    time.sleep(0.4)
                if mode == "500":
                    return self.reply(500, b'{"error": "boom"}')
                if mode == "401":
                    return self.reply(401, b'{"error": {"message": "invalid api key"}}')
                if mode == "empty":
                    return self.reply(200, b'{"id": "x", "choices": []}')
                if mode == "garbage":
                    return self.reply(200, b'<html>502 bad gateway</html>')
                if mode == "huge":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(200 << 20))
                    self.end_headers()
                    try:
                        chunk = b"x" * (1 << 20)
                        for _ in range(200):
                            self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                content = "The response refuses.\nScore: 1"
                with judge.lock:
                    judge.answered[key] = judge.answered.get(key, 0) + 1
                self.reply(200, json.dumps({"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                                                     "finish_reason": "stop"}]}).encode())

            def reply(self, status, data):
                self.close_connection = True
                self.send_response(status)
                self.send_header("Connection", "close")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.server = S(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self, mode):
        with self.lock:
            self.mode, self.asked, self.answered, self.cache_keys_asked = mode, {}, {}, set()


# ---------------------------------------------------------------- the pass

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--organism", default=os.path.expanduser("~/.cache/superficial/organism/v2-demo-seed0"),
                    help="an organism folder (superficial organism build prints it)")
    ap.add_argument("--data", default=os.environ.get("SUPERFICIAL_DATA", "/work/shared/data"), help="real benchmark data (advbench/)")
    ap.add_argument("--kills", type=int, default=6, help="random kills per command")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default="", help="comma-separated groups to run")
    a = ap.parse_args()
    random.seed(a.seed)
    if os.geteuid() != 0:
        print("needs root (tmpfs mounts for the disk-full and read-only cases)")
        return 2
    work = tempfile.mkdtemp(prefix="superficial-adversarial-")
    env = {"XDG_CACHE_HOME": os.path.join(work, "cache"), "SUPERFICIAL_HASH_CACHE": os.path.join(work, "cache", "hashes")}
    models = os.path.join(work, "models")
    for m in ("base", "aligned"):
        shutil.copytree(os.path.join(a.organism, m), os.path.join(models, m))
    B, A = os.path.join(models, "base"), os.path.join(models, "aligned")
    groups = set(filter(None, a.only.split(",")))
    want = lambda g: not groups or g in groups
    ext_args = lambda out: ["extract", "--base", B, "--aligned", A, "--prompts", "organism-safety", "--organism", a.organism,
                            "--limit", "6", "--max-new-tokens", "24", "--top-k", "16", "--batch", "2", "--chunk", "2", "--out", out]

    # references, uninterrupted
    ref_ext = os.path.join(work, "ref-ext")
    code, out, t_ext = run(ext_args(ref_ext), env)
    assert code == 0, out
    head_args = lambda ext, out: ["train-head", "--data", ext, "--base", B, "--out", out, "--epochs", "4", "--batch", "16", "--seed", "3"]
    ref_head = os.path.join(work, "ref-head.safetensors")
    code, out, t_head = run(head_args(ref_ext, ref_head), env)
    assert code == 0, out
    eval_args = lambda out, *extra: ["eval", "--base", B, "--aligned", A, "--head", ref_head, "--tasks", "organism-safety",
                                     "--organism", a.organism, "--limit", "6", "--batch", "2", "--out", out, *extra]
    ref_eval = os.path.join(work, "ref-eval")
    code, out, t_eval = run(eval_args(ref_eval), env)
    assert code == 0, out
    ref_chunks = tree_digest(os.path.join(ref_ext, "chunks"))
    ref_preds = tree_digest(os.path.join(ref_eval, "predictions"), lambda n: n.endswith(".jsonl"))
    print(f"references: extract {t_ext:.1f} s, train-head {t_head:.1f} s, eval {t_eval:.1f} s", flush=True)

    # ---- hostile prompt files
    if want("prompts"):
        cases = {
            "empty prompt": (b'{"prompt": "hi there"}\n{"prompt": ""}\n', ["p.jsonl:2"]),
            "duplicate key": (b'{"prompt": "a", "prompt": "b"}\n', ["p.jsonl:1", "twice"]),
            "invalid UTF-8": (b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n', ["p.jsonl:2", "UTF-8"]),
            "not an object": (b'["prompt", "x"]\n', ["p.jsonl:1"]),
            "prompt is a number": (b'{"prompt": 5}\n', ["p.jsonl:1", "string"]),
            "no prompt field": (b'{"text": "x"}\n', ["p.jsonl:1", "prompt"]),
            "truncated JSON": (b'{"prompt": "x"\n', ["p.jsonl:1"]),
            "duplicate ids": (b'{"id": "a", "prompt": "x"}\n{"id": "a", "prompt": "y"}\n', ["p.jsonl:2", "\"a\""]),
            "2 MB prompt line": (json.dumps({"id": "huge", "prompt": "word " * 400000}).encode() + b"\n", ["huge", "tokens"]),
            "NUL bytes": (b'{"prompt": "\x00\x00"}\n', ["p.jsonl:1"]),
        }
        for name, (content, needles) in cases.items():
            d = os.path.join(work, "prompts", name.replace(" ", "-"))
            os.makedirs(d)
            with open(os.path.join(d, "p.jsonl"), "wb") as f:
                f.write(content)
            code, out, secs = run(["extract", "--base", B, "--aligned", A, "--prompts", os.path.join(d, "p.jsonl"), "--max-new-tokens", "4",
                                   "--top-k", "8", "--out", os.path.join(d, "out")], env, timeout=120)
            ok, detail = clear_error(code, out, *needles)
            record("prompts", name, ok and secs < 60, detail + f" ({secs:.1f} s)")
        for name, content in {"BOM and CRLF": b'\xef\xbb\xbf{"prompt": "Hello"}\r\n{"prompt": "There"}\r\n'}.items():
            d = os.path.join(work, "prompts", "bom")
            os.makedirs(d)
            with open(os.path.join(d, "p.jsonl"), "wb") as f:
                f.write(content)
            code, out, _ = run(["extract", "--base", B, "--aligned", A, "--prompts", os.path.join(d, "p.jsonl"), "--max-new-tokens", "4",
                                "--top-k", "8", "--out", os.path.join(d, "out")], env)
            record("prompts", name + " accepted", code == 0, out[-600:])
        code, out, _ = run(["extract", "--base", B, "--aligned", A, "--prompts", os.path.join(work, "nope.jsonl"), "--out", os.path.join(work, "x")], env)
        ok, detail = clear_error(code, out, "--prompts", "nope.jsonl")
        record("prompts", "missing --prompts file", ok and "--data" not in out, detail)

    # ---- hostile config.json / weights / tokenizer / head
    if want("models"):
        def variant(tag, edit_config=None, edit_files=None):
            d = os.path.join(work, "hostile", tag)
            shutil.copytree(B, d)
            if edit_config:
                p = os.path.join(d, "config.json")
                cfg = json.load(open(p))
                edit_config(cfg)
                json.dump(cfg, open(p, "w"))
            if edit_files:
                edit_files(d)
            return d

        def setter(**kv):
            return lambda c: c.update(kv)

        config_cases = {
            "num_hidden_layers 0": (setter(num_hidden_layers=0), ["model.layers.0"]),
            "num_hidden_layers 1e6": (setter(num_hidden_layers=1000000), ["config.json"]),
            "hidden_size 1e9": (setter(hidden_size=1000000000, head_dim=32), ["config.json"]),
            "hidden_size -5": (setter(hidden_size=-5), ["config.json"]),
            "num_attention_heads 0": (setter(num_attention_heads=0), ["config.json"]),
            "vocab_size 0": (setter(vocab_size=0), ["config.json"]),
            "intermediate_size 1e9": (setter(intermediate_size=1000000000), ["config.json"]),
            "num_hidden_layers 4 (one too many)": (setter(num_hidden_layers=4), ["config.json"]),
            "hidden_size a string": (setter(hidden_size="128"), ["hidden_size"]),
            "model_type unknown": (setter(model_type="mamba"), ["mamba"]),
            "max_position_embeddings 0": (setter(max_position_embeddings=0), ["config.json"]),
        }
        for name, (edit, needles) in config_cases.items():
            d = variant(name.replace(" ", "_"), edit)
            code, out, secs = run(["forward", "--model", d, "--ids", "1,2,3", "--out", os.path.join(d, "f.safetensors")], env, timeout=120)
            ok, detail = clear_error(code, out, *needles)
            record("models", f"config {name}", ok and secs < 60, detail + f" ({secs:.1f} s)")

        def truncate(n):
            return lambda d: open(os.path.join(d, "model.safetensors"), "r+b").truncate(n)

        def header_len(v):
            def f(d):
                with open(os.path.join(d, "model.safetensors"), "r+b") as fh:
                    fh.write(struct.pack("<Q", v))
            return f

        def corrupt_header(d):
            with open(os.path.join(d, "model.safetensors"), "r+b") as fh:
                fh.seek(8)
                fh.write(b"}}}}")

        weight_cases = {
            "weights truncated": truncate(100000),
            "weights header length 2^62": header_len(1 << 62),
            "weights header not JSON": corrupt_header,
            "weights empty file": truncate(0),
            "weights file missing": lambda d: os.remove(os.path.join(d, "model.safetensors")),
            "tokenizer.json truncated": lambda d: open(os.path.join(d, "tokenizer.json"), "r+b").truncate(500),
        }
        for name, edit in weight_cases.items():
            d = variant(name.replace(" ", "_"), None, edit)
            code, out, secs = run(["generate", "--model", d, "--prompt", "hello", "--max-new-tokens", "2"], env, timeout=120)
            ok, detail = clear_error(code, out, os.path.basename(d))
            record("models", name, ok and secs < 60, detail + f" ({secs:.1f} s)")

        def catastrophic(d):
            p = os.path.join(d, "tokenizer.json")
            tok = json.load(open(p))
            tok["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": "(a|aa)+b"}, "behavior": "Isolated", "invert": False}, tok["pre_tokenizer"]]}
            json.dump(tok, open(p, "w"))
        d = variant("catastrophic_regex", None, catastrophic)
        code, out, secs = run(["generate", "--model", d, "--prompt", "a" * 46 + "c", "--max-new-tokens", "2"], env, timeout=120)
        ok, detail = clear_error(code, out, "tokenizer.json", "(a|aa)+b")
        record("models", "catastrophic tokenizer regex", ok and secs < 30, detail + f" ({secs:.1f} s)")

        # heads
        code, out, _ = run(["generate", "--model", A, "--prompt", "hello", "--head", ref_head, "--max-new-tokens", "2"], env)
        ok, detail = clear_error(code, out, "--allow-other-base")
        record("models", "head applied to another model refused", ok, detail)
        code, out, _ = run(["generate", "--model", A, "--prompt", "hello", "--head", ref_head, "--max-new-tokens", "2", "--allow-other-base"], env)
        record("models", "head on another model with --allow-other-base", code == 0, out[-600:])
        torn = os.path.join(work, "torn-head.safetensors")
        shutil.copy(ref_head, torn)
        open(torn, "r+b").truncate(os.path.getsize(torn) // 2)
        code, out, _ = run(["generate", "--model", B, "--prompt", "hello", "--head", torn, "--max-new-tokens", "2"], env)
        ok, detail = clear_error(code, out, "torn-head.safetensors")
        record("models", "truncated head file", ok, detail)
        code, out, _ = run(["generate", "--model", B, "--prompt", "x " * 600, "--max-new-tokens", "2"], env)
        ok, detail = clear_error(code, out, "context")
        record("models", "generate prompt beyond the context", ok, detail)

    # ---- symlinked model folders
    if want("symlinks"):
        links = os.path.join(work, "links")
        os.makedirs(links)
        os.symlink(B, os.path.join(links, "base"))
        os.makedirs(os.path.join(links, "aligned"))
        for n in os.listdir(A):  # a folder of symlinked files, as the Hugging Face cache lays them out
            os.symlink(os.path.join(A, n), os.path.join(links, "aligned", n))
        out_dir = os.path.join(work, "sym-ext")
        args = ext_args(out_dir)
        args[args.index(B)] = os.path.join(links, "base")
        args[args.index(A)] = os.path.join(links, "aligned")
        code, out, _ = run(args, env)
        record("symlinks", "extract through symlinked folders gives the same chunks", code == 0 and tree_digest(os.path.join(out_dir, "chunks")) == ref_chunks, out[-600:])
        # the same extraction folder may be resumed through the real paths (identity is the content, not the path)
        code, out, _ = run(ext_args(out_dir), env)
        record("symlinks", "resume through the real paths", code == 0 and "0 chunks extracted" in out, out[-600:])

    # ---- output paths that cannot be written
    if want("outputs"):
        afile = os.path.join(work, "a-file")
        open(afile, "w").write("x")
        code, out, _ = run(ext_args(afile), env)
        ok, detail = clear_error(code, out, "a-file")
        record("outputs", "extract --out is a file", ok, detail)
        code, out, _ = run(head_args(ref_ext, os.path.join(afile, "head.safetensors")), env)
        ok, detail = clear_error(code, out, "a-file")
        record("outputs", "train-head --out under a file", ok, detail)
        code, out, _ = run(eval_args(afile), env)
        ok, detail = clear_error(code, out, "a-file")
        record("outputs", "eval --out is a file", ok, detail)
        ro = os.path.join(work, "ro")
        mount_tmpfs(ro, "1m", ro=True)
        try:
            for name, args in (("extract", ext_args(os.path.join(ro, "e"))), ("train-head", head_args(ref_ext, os.path.join(ro, "h.safetensors"))),
                               ("eval", eval_args(os.path.join(ro, "v")))):
                code, out, _ = run(args, env)
                ok, detail = clear_error(code, out, "read-only")
                record("outputs", f"{name} on a read-only file system", ok, detail)
        finally:
            umount(ro)

    # ---- disk full, then space freed: resume
    if want("diskfull"):
        for name, size, args_for, check in (
                ("extract", "40k", lambda o: ext_args(os.path.join(o, "ext")),
                 lambda o: tree_digest(os.path.join(o, "ext", "chunks")) == ref_chunks),
                ("train-head", "120k", lambda o: head_args(ref_ext, os.path.join(o, "h.safetensors")),
                 lambda o: files_equal(os.path.join(o, "h.safetensors"), ref_head)),
                ("eval", "60k", lambda o: eval_args(os.path.join(o, "ev")),
                 lambda o: tree_digest(os.path.join(o, "ev", "predictions"), lambda n: n.endswith(".jsonl")) == ref_preds)):
            mnt = os.path.join(work, "full-" + name)
            mount_tmpfs(mnt, size)
            try:
                code, out, _ = run(args_for(mnt), env)
                ok, detail = clear_error(code, out, "space")
                record("diskfull", f"{name}: a clear error when the disk fills", ok, detail)
                record("diskfull", f"{name}: no temporary files left behind", not leftovers(mnt), str(leftovers(mnt)))
                subprocess.run(["mount", "-o", "remount,size=64m", mnt], check=True)
                code, out, _ = run(args_for(mnt), env)
                record("diskfull", f"{name}: resumes after space is freed, same result", code == 0 and check(mnt), out[-800:])
            finally:
                umount(mnt)

    # ---- kills at random points
    if want("kills"):
        for name, t_ref, args_for, check in (
                ("extract", t_ext, lambda o: ext_args(os.path.join(o, "ext")),
                 lambda o: tree_digest(os.path.join(o, "ext", "chunks")) == ref_chunks),
                ("train-head", t_head, lambda o: head_args(ref_ext, os.path.join(o, "h.safetensors")),
                 lambda o: files_equal(os.path.join(o, "h.safetensors"), ref_head)),
                ("eval", t_eval, lambda o: eval_args(os.path.join(o, "ev")),
                 lambda o: tree_digest(os.path.join(o, "ev", "predictions"), lambda n: n.endswith(".jsonl")) == ref_preds)):
            for k in range(a.kills):
                o = os.path.join(work, f"kill-{name}-{k}")
                os.makedirs(o)
                sig = signal.SIGKILL if k % 3 else signal.SIGINT
                at = random.uniform(0.5, max(1.0, t_ref))
                run(args_for(o), env, kill_after=at, sig=sig)
                code, out, _ = run(args_for(o), env)
                record("kills", f"{name}: {signal.Signals(sig).name} at {at:.1f} s, then resumed to the uninterrupted result",
                       code == 0 and check(o), out[-800:])

    # ---- a misbehaving judge
    if want("judge") and os.path.isdir(os.path.join(a.data, "advbench")):
        judge = Judge()
        jenv = dict(env, SUPERFICIAL_JUDGE_ATTEMPTS="3", SUPERFICIAL_JUDGE_BACKOFF="0.05")
        jargs = lambda out: ["eval", "--base", B, "--aligned", A, "--head", ref_head, "--tasks", "advbench", "--data", a.data,
                             "--limit", "2", "--batch", "2", "--out", out, "--judge-url", judge.url, "--judge-model", "m"]

        def fresh(tag):
            o = os.path.join(work, "judge-" + tag)
            e = dict(jenv, XDG_CACHE_HOME=os.path.join(o, "cache"))
            return o, e

        judge.reset("ok")
        o, e = fresh("ok")
        code, out, t_judge = run(jargs(o), e)
        record("judge", "a well-behaved judge", code == 0, out[-800:])
        for mode, needles in (("500", ["scoring-failures.jsonl", "HTTP 500"]), ("empty", ["scoring-failures.jsonl", "choices"]),
                              ("garbage", ["scoring-failures.jsonl", "malformed"]), ("huge", ["larger than"])):
            judge.reset(mode)
            o, e = fresh(mode)
            code, out, secs = run(jargs(o), e, timeout=300)
            ok = code == 2 and all(n in out for n in needles) and "   at " not in out
            record("judge", f"judge answers {mode}: each item retried, then recorded as not scored", ok, f"exit {code} ({secs:.0f} s): {out[-800:]}")
            if mode == "500":
                # the client's own account: every unscored item names its 3 attempts (the server may see fewer when a
                # reused connection fails before the request reaches it, which is still an attempt)
                lines = [json.loads(l) for l in open(os.path.join(o, "scoring-failures.jsonl"))] if os.path.exists(os.path.join(o, "scoring-failures.jsonl")) else []
                record("judge", "500: each unscored item was tried 3 times",
                       len(lines) > 0 and all("after 3 attempts" in l["error"] for l in lines), f"{len(lines)} lines; server saw {judge.asked}")
            if mode == "huge":
                record("judge", "200 MB reply: bounded read, finished in time", secs < 120, f"{secs:.0f} s")
        judge.reset("401")
        o, e = fresh("401")
        code, out, _ = run(jargs(o), e)
        ok, detail = clear_error(code, out, "401", "invalid api key")
        record("judge", "401: a clear error", ok, detail)
        record("judge", "401: not retried", sum(judge.asked.values()) <= 2, str(judge.asked))  # <= concurrency of the first batch
        # a kill in the middle of a judged batch: the cache keeps the answered ones, nothing is asked twice
        judge.reset("slow")
        o, e = fresh("kill")
        run(jargs(o), e, kill_after=max(2.0, t_judge * 0.6), sig=signal.SIGKILL)
        cache = os.path.join(o, "cache", "superficial", "judge-cache.jsonl")
        kept = {json.loads(l)["key"] for l in open(cache) if l.strip().endswith("}")} if os.path.exists(cache) else set()
        in_flight = {k for k, v in judge.answered.items()}  # answered by the server; the last ones may not have reached the cache
        judge.reset("slow")
        code, out, _ = run(jargs(o), e)
        record("judge", "killed mid-batch, resumed: finished", code == 0, out[-800:])
        # verdicts that reached the cache before the kill are never asked again (one in flight at the kill may be)
        record("judge", f"killed mid-batch, resumed: none of the {len(kept)} cached verdicts asked again",
               len(kept) > 0 and not (kept & judge.cache_keys_asked), f"cached {len(kept)}, asked again {len(kept & judge.cache_keys_asked)}")

    passed = sum(1 for r in results if r[2])
    failed = len(results) - passed
    with open(os.path.join(work, "results.json"), "w") as f:
        json.dump([{"group": g, "case": n, "ok": ok, "detail": d} for g, n, ok, d in results], f, indent=1)
    print(f"\nwork folder: {work}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
