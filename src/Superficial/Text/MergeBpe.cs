namespace Superficial.Text;

/// <summary>
/// Byte-pair encoding by merge rank over a sequence of symbols (what HF tokenizers' BPE model does):
/// repeatedly merge the adjacent pair with the lowest rank. A priority queue keeps it O(n log n), so long
/// texts without pre-tokenisation (SentencePiece-style vocabularies) stay fast.
/// </summary>
internal sealed class MergeBpe(IReadOnlyDictionary<(string, string), int> ranks)
{
    public List<string> Apply(List<string> symbols)
    {
        int n = symbols.Count;
        if (n < 2) return symbols;
        var sym = symbols.ToArray();
        var prev = new int[n];
        var next = new int[n];
        var alive = new bool[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; alive[i] = true; }
        var queue = new PriorityQueue<(int left, string a, string b), (int rank, int pos)>();
        void Push(int left)
        {
            int right = next[left];
            if (right < 0) return;
            if (ranks.TryGetValue((sym[left], sym[right]), out var r)) queue.Enqueue((left, sym[left], sym[right]), (r, left));
        }
        for (int i = 0; i + 1 < n; i++) Push(i);
        while (queue.TryDequeue(out var item, out _))
        {
            int left = item.left;
            if (!alive[left]) continue;
            int right = next[left];
            // stale entry: one side was merged since it was queued
            if (right < 0 || sym[left] != item.a || sym[right] != item.b) continue;
            sym[left] = item.a + item.b;
            alive[right] = false;
            next[left] = next[right];
            if (next[right] >= 0) prev[next[right]] = left;
            if (prev[left] >= 0) Push(prev[left]);
            Push(left);
        }
        var result = new List<string>();
        for (int i = 0; i >= 0; i = next[i]) result.Add(sym[i]);
        return result;
    }
}
