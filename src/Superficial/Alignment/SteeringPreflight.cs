using Superficial.Models;
using Superficial.Tensors;

namespace Superficial.Alignment;

/// <summary>
/// Checks that a steering request fits its models from file headers alone (head metadata, config.json), so a
/// head that does not fit is reported before any model is loaded or any forward pass is run (at 7B scale a
/// mismatch found after the first variant costs hours), with a hint at the option that fits.
/// </summary>
public static class SteeringPreflight
{
    /// <summary>Throws a <see cref="HeadException"/> naming the files and the option to use when the request cannot work on <paramref name="model"/>.</summary>
    public static void Check(string model, SteeringRequest r)
    {
        if (r.IsEmpty) return;
        var target = Shape(model);
        if (r.RecoverWith is not null)
        {
            var head = HeadShape(r.RecoverWith);
            if (r.ViaBase is not null)
            {
                var side = Shape(r.ViaBase);
                Fits(head, r.RecoverWith, side, r.ViaBase, "the `ViaBase` model");
                SameVocabulary(side, r.ViaBase, target, model);
            }
            else Fits(head, r.RecoverWith, target, model, "the compromised model",
                head.Hidden != target.Hidden ? " To steer it with a head of another hidden size, give `ViaBase` (the base model the head was trained on)." : "");
            return;
        }
        var h = HeadShape(r.Head!);
        if (r.TransferFrom is null)
        {
            Fits(h, r.Head!, target, model, "the model",
                h.Hidden != target.Hidden && h.Vocab == target.Vocab
                    ? " If the head was trained on a smaller base model of the same vocabulary, give `TransferFrom` SMALL_BASE (offsite alignment)." : "");
            return;
        }
        var small = Shape(r.TransferFrom);
        Fits(h, r.Head!, small, r.TransferFrom, "the `TransferFrom` model");
        SameVocabulary(small, r.TransferFrom, target, model);
        if (r.TransferMode == TransferMode.Direct && h.Hidden != target.Hidden)
            throw new HeadException($"`TransferMode` direct applies the head ({r.Head}, hidden size {h.Hidden}) to {model}'s hidden states (size {target.Hidden}); " +
                                    "use `TransferMode` offset (the small model runs beside it).");
    }

    readonly record struct ModelShape(int Hidden, int Vocab);

    static ModelShape Shape(string folder)
    {
        var c = ModelConfig.Load(Path.Combine(folder, "config.json"));
        return new(c.HiddenSize, c.VocabSize);
    }

    static ModelShape HeadShape(string path)
    {
        if (!File.Exists(path)) throw new HeadException($"{path}: no such head file.");
        using var f = SafeTensorsFile.Open(path);
        string Meta(string k) => f.Metadata.TryGetValue(k, out var v) ? v
            : throw new HeadException($"{path}: not a superficial head file (metadata \"{k}\" missing).");
        if (!int.TryParse(Meta("hidden_size"), out var hidden) || !int.TryParse(Meta("vocab_size"), out var vocab))
            throw new HeadException($"{path}: hidden_size/vocab_size metadata are not integers.");
        return new(hidden, vocab);
    }

    static void Fits(ModelShape head, string headPath, ModelShape m, string folder, string role, string hint = "")
    {
        if (head.Hidden != m.Hidden)
            throw new HeadException($"{headPath} was trained for hidden size {head.Hidden}, but {role} ({folder}) has hidden size {m.Hidden}.{hint}");
        if (head.Vocab != m.Vocab)
            throw new HeadException($"{headPath} was trained for a vocabulary of {head.Vocab}, but {role} ({folder}) has {m.Vocab}.{hint}");
    }

    static void SameVocabulary(ModelShape side, string sideFolder, ModelShape main, string mainFolder)
    {
        if (side.Vocab != main.Vocab)
            throw new HeadException($"{sideFolder} has a vocabulary of {side.Vocab} but {mainFolder} has {main.Vocab}: a head moves between models of the same vocabulary only.");
    }
}
