using OpenAI;
using OpenAI.Chat;

namespace Superficial.Bench;

/// <summary>
/// Prints a chat completion made through the official OpenAI .NET client against a running `superficial serve`
/// (for the README and notes): chat-transcript URL MODEL PROMPT [MODEL...].
/// </summary>
internal static class ChatTranscript
{
    public static void Run(string url, string prompt, IEnumerable<string> models)
    {
        foreach (var model in models)
        {
            var client = new ChatClient(model, new System.ClientModel.ApiKeyCredential(Environment.GetEnvironmentVariable("SUPERFICIAL_API_KEY") ?? "none"),
                new OpenAIClientOptions { Endpoint = new Uri(url) });
            var r = client.CompleteChat([new UserChatMessage(prompt)], new ChatCompletionOptions { Temperature = 0, MaxOutputTokenCount = 48 }).Value;
            Console.WriteLine($"model {r.Model} ({r.Id}): finish {r.FinishReason}, usage {r.Usage.InputTokenCount} + {r.Usage.OutputTokenCount} tokens");
            Console.WriteLine($"  user: {prompt}");
            Console.WriteLine($"  assistant: {r.Content[0].Text}");
        }
    }
}
