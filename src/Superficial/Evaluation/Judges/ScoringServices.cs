using Superficial.Evaluation.Toxicity;

namespace Superficial.Evaluation.Judges;

/// <summary>Builds the <see cref="ScoringContext"/> that tasks look their judges and labellers up in.</summary>
public static class ScoringServices
{
    public static ScoringContext Create(ISafetyJudge? safety = null, ITruthJudge? truth = null, IToxicityLabeler? toxicity = null)
    {
        var services = new Dictionary<Type, object>();
        if (safety is not null) services[typeof(ISafetyJudge)] = safety;
        if (truth is not null) services[typeof(ITruthJudge)] = truth;
        if (toxicity is not null) services[typeof(IToxicityLabeler)] = toxicity;
        return new ScoringContext { Services = services };
    }
}
