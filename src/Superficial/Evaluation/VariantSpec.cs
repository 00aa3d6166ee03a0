using Superficial.Alignment;
using Superficial.IO;
using Superficial.Models;

namespace Superficial.Evaluation;

/// <summary>One variant to evaluate: a model folder, raw or chat prompts, and how a head is applied (if at all).</summary>
public sealed record VariantSpec(string Name, string Model, bool Chat, SteeringRequest Steering, string? ChatTemplate = null)
{
    /// <summary>
    /// A fingerprint of what this variant computes: model folders by <see cref="ModelIdentity"/>, head files
    /// by their SHA-256, the prompt form and the steering settings (see <see cref="IModelVariant.Identity"/>).
    /// </summary>
    public string Identity()
    {
        static string? Folder(string? dir) => dir is null ? null : ModelIdentity.Of(dir);
        static string? File(string? path) => path is null ? null
            : Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.IO.File.ReadAllBytes(path)));
        var s = Steering;
        return new System.Text.Json.Nodes.JsonObject
        {
            ["model"] = Folder(Model), ["chat"] = Chat, ["chat_template"] = ChatTemplate,
            ["head"] = File(s.Head), ["transfer_from"] = Folder(s.TransferFrom), ["transfer_mode"] = s.TransferFrom is null ? null : s.TransferMode.Name(),
            ["recover_with"] = File(s.RecoverWith), ["via_base"] = Folder(s.ViaBase),
            ["via_base_reads"] = s.ViaBase is null ? null : s.ViaBaseReads.Name(),
            ["alpha"] = s.IsEmpty ? null : s.Alpha,
        }.ToJsonString();
    }
}
