//! The routing decision: read the customer's traits (within the deadline), apply the rules.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::identity::Identifier;
use crate::domain::ports::{ProfileError, Profiles, TraitsFrom, TraitsQuery};
use crate::domain::rules::{Arm, NotEvaluated, RuleSet, RuleTrace, Verdict};

/// Whose decision this is.
pub enum Subject {
    /// Look the customer up.
    Customer(Identifier),
    /// The caller withheld their number: decided as a customer Segment does not know,
    /// without a lookup.
    Withheld,
    /// Decide on traits the caller already has, without a lookup.
    Traits(Map<String, Value>),
}

pub struct DecisionRequest {
    pub subject: Subject,
    pub channel: Option<String>,
    /// The caller asked how each rule fared (`explain=true`).
    pub explain: bool,
    /// The traits the answer carries back when the profile is read (`RESPONSE_TRAITS`), so
    /// the flow needs no second lookup.
    pub returning: Arc<BTreeSet<String>>,
}

/// The answer Studio's Split widget branches on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub transition: String,
    pub rule: String,
    pub fallback: bool,
    pub profile_found: bool,
    pub attributes: Map<String, Value>,
    /// How each rule fared, in order, when the caller asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Vec<RuleTrace>>,
    /// Of the traits the request asked back, those the profile holds; only when a profile
    /// was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits: Option<Map<String, Value>>,
    /// `store` or `store+profile_api` when the trait store gave traits: Segment's profile is
    /// otherwise where they come from, and the answer does not say so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traits_from: Option<&'static str>,
    /// What the shadow rule set answered on the same traits: for the log and the metrics,
    /// and in the answer only when the caller asked for an explanation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowVerdict>,
    /// The rules document's experiment, when it has one, and which of its arms decided.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arm: Option<&'static str>,
}

/// A shadow rule set's answer: never acted on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShadowVerdict {
    pub transition: String,
    pub rule: String,
}

impl From<Verdict> for ShadowVerdict {
    fn from(verdict: Verdict) -> Self {
        Self {
            transition: verdict.transition,
            rule: verdict.rule,
        }
    }
}

/// How the profile was read, for the decision's log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Traits came with the request.
    Inline,
    /// The rules read no trait, so nothing was looked up.
    NotNeeded,
    /// The caller withheld their number, so there was no one to look up.
    Withheld,
    Found(TraitsFrom),
    NotFound,
    Failed(ProfileError),
    DeadlineExceeded,
    /// The emergency override decided: nothing was looked up.
    Overridden,
    /// The rules gave no verdict in time (see [`NotEvaluated`]).
    NotEvaluated(NotEvaluated),
}

impl Lookup {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Inline => "inline",
            Self::NotNeeded => "not_needed",
            Self::Withheld => "withheld",
            Self::Found(_) => "found",
            Self::NotFound => "not_found",
            Self::Failed(_) => "failed",
            Self::DeadlineExceeded => "deadline_exceeded",
            Self::Overridden => "overridden",
            Self::NotEvaluated(_) => "rules_not_evaluated",
        }
    }

    /// Whether the decision asked the profile store (whatever it answered).
    pub fn read_a_profile(&self) -> bool {
        matches!(
            self,
            Self::Found(_) | Self::NotFound | Self::Failed(_) | Self::DeadlineExceeded
        )
    }

    /// Where the traits came from, when a profile was found.
    pub fn traits_from(&self) -> Option<&'static str> {
        match self {
            Self::Found(from) => Some(from.as_str()),
            _ => None,
        }
    }

    /// Why the decision fell back, in one word (see [`ProfileError::reason`]; `deadline`
    /// when the decision's own deadline came first); `None` when it did not.
    pub fn fallback_reason(&self) -> Option<&'static str> {
        match self {
            Self::Failed(error) => Some(error.reason()),
            Self::DeadlineExceeded => Some("deadline"),
            Self::NotEvaluated(why) => Some(why.reason()),
            _ => None,
        }
    }
}

/// Decides, always within `budget`: a lookup that fails or runs out of time, or rules that
/// cannot be evaluated in time, yield the rules' `on_error` outcome with `fallback: true`, so
/// Studio always gets a transition.
pub async fn decide<P: Profiles>(
    profiles: &P,
    rules: &Arc<RuleSet>,
    request: &DecisionRequest,
    budget: Duration,
) -> (Decision, Lookup) {
    decide_beside(profiles, rules, None, request, budget).await
}

/// [`decide`], with a shadow rule set judged beside the live one on the same traits and
/// within the same deadline (its `on_error` when the live set falls back). The one lookup
/// asks for both sets' traits; the shadow never changes the decision.
pub async fn decide_beside<P: Profiles>(
    profiles: &P,
    rules: &Arc<RuleSet>,
    shadow: Option<&Arc<RuleSet>>,
    request: &DecisionRequest,
    budget: Duration,
) -> (Decision, Lookup) {
    let (mut decided, lookup) = decide_in_arm(profiles, rules, shadow, request, budget).await;
    if let Some(experiment) = rules.experiment() {
        decided.experiment = Some(experiment.name.clone());
        decided.arm = Some(arm_of(rules, &request.subject).as_str());
    }
    (decided, lookup)
}

/// The experiment's arm for this subject: the treatment for a share of identified customers;
/// the control for the rest, a withheld caller and inline traits.
fn arm_of(rules: &RuleSet, subject: &Subject) -> Arm {
    match (rules.experiment(), subject) {
        (Some(experiment), Subject::Customer(identifier)) => {
            experiment.arm(&identifier.to_string())
        }
        _ => Arm::Control,
    }
}

async fn decide_in_arm<P: Profiles>(
    profiles: &P,
    document: &Arc<RuleSet>,
    shadow: Option<&Arc<RuleSet>>,
    request: &DecisionRequest,
    budget: Duration,
) -> (Decision, Lookup) {
    let rules = match (document.experiment(), arm_of(document, &request.subject)) {
        (Some(experiment), Arm::Treatment) => &experiment.rules,
        _ => document,
    };
    let channel = request.channel.as_deref();
    // The document's traits, both arms': the lookup is the same whichever arm decides. A
    // shadow whose traits no longer fit beside them (the live rules changed) sits this out.
    let (wanted, shadow) = asked(document, shadow, &request.returning);
    let fallback = || {
        let trace = request.explain.then(|| rules.not_evaluated());
        let mut decided = decision(rules.on_error(channel), true, false, trace);
        decided.shadow = shadow.map(|shadow| shadow.on_error(channel).into());
        decided
    };
    // The source is told the deadline so it can size its own retries; the timeout here is
    // what guarantees the answer whatever the source does.
    let deadline = Instant::now() + budget;
    let no_traits = Map::new();
    let looked_up;
    let (traits, profile_found, lookup) = match &request.subject {
        Subject::Traits(traits) => (traits, false, Lookup::Inline),
        Subject::Withheld => (&no_traits, false, Lookup::Withheld),
        Subject::Customer(_) if wanted.as_ref().is_some_and(BTreeSet::is_empty) => {
            (&no_traits, false, Lookup::NotNeeded)
        }
        Subject::Customer(identifier) => {
            let query = TraitsQuery::include(wanted.as_ref());
            let lookup = profiles.traits_found(identifier, &query, deadline);
            match tokio::time::timeout(budget, lookup).await {
                Ok(Ok(Some((traits, from)))) => {
                    looked_up = traits;
                    (&looked_up, true, Lookup::Found(from))
                }
                // Unknown to Segment is not an error: a customer with no traits.
                Ok(Ok(None)) => (&no_traits, false, Lookup::NotFound),
                Ok(Err(error)) => return (fallback(), Lookup::Failed(error)),
                Err(_) => return (fallback(), Lookup::DeadlineExceeded),
            }
        }
    };
    let returned =
        (matches!(lookup, Lookup::Found(_)) && !request.returning.is_empty()).then(|| {
            request
                .returning
                .iter()
                .filter_map(|name| Some((name.clone(), traits.get(name)?.clone())))
                .collect()
        });
    match rules
        .judge_within(traits, channel, request.explain, deadline)
        .await
    {
        Ok((verdict, trace)) => {
            let mut decided = decision(verdict, false, profile_found, trace);
            decided.traits = returned;
            decided.traits_from = match &lookup {
                Lookup::Found(from) if *from != TraitsFrom::ProfileApi => Some(from.as_str()),
                _ => None,
            };
            if let Some(shadow) = shadow {
                let judged = shadow.judge_within(traits, channel, false, deadline).await;
                let verdict = judged.map_or_else(|_| shadow.on_error(channel), |(v, _)| v);
                decided.shadow = Some(verdict.into());
            }
            (decided, lookup)
        }
        Err(not_evaluated) => (fallback(), Lookup::NotEvaluated(not_evaluated)),
    }
}

/// The traits a lookup asks for: those the rules (and the shadow's) read and those the answer
/// returns; `None` (all of them) when either set may read any. The shadow comes back only
/// if its traits fit the one lookup (as [`fits_beside`] says).
fn asked<'s>(
    rules: &RuleSet,
    shadow: Option<&'s Arc<RuleSet>>,
    returning: &BTreeSet<String>,
) -> (Option<BTreeSet<String>>, Option<&'s Arc<RuleSet>>) {
    let Some(live) = rules.referenced_traits() else {
        return (None, shadow);
    };
    let mut wanted = live.clone();
    wanted.extend(returning.iter().cloned());
    let Some(shadow) = shadow else {
        return (Some(wanted), None);
    };
    let Some(theirs) = shadow.referenced_traits() else {
        return (None, Some(shadow));
    };
    let more = theirs.iter().filter(|key| !wanted.contains(*key)).count();
    if wanted.len() + more > usize::from(TraitsQuery::MAX_LIMIT) {
        return (Some(wanted), None);
    }
    wanted.extend(theirs.iter().cloned());
    (Some(wanted), Some(shadow))
}

/// Whether `shadow` may be judged beside `live`: its transitions are ones `live` declares
/// (when it declares them), and its traits fit the one lookup ([`fits_beside`]). `Err` says
/// why not, for the log.
pub fn shadow_admitted(
    live: &RuleSet,
    shadow: &RuleSet,
    returned: &BTreeSet<String>,
) -> Result<(), String> {
    if let Some((rule, transition)) = live.undeclared_in(shadow).next() {
        return Err(format!(
            "its rule \"{rule}\" answers \"{transition}\", which is not one of the live rules' declared transitions ({})",
            live.declared_list()
        ));
    }
    fits_beside(live, shadow, returned).map_err(|asked| {
        format!(
            "with the live rules a decision would ask for {asked} traits; one Profile API request returns at most {}",
            TraitsQuery::MAX_LIMIT
        )
    })
}

/// Whether one lookup still covers `shadow`'s traits beside `live`'s and the `returned` ones
/// (a shadow never adds a lookup); `Err` with how many a decision would ask for when not.
fn fits_beside(live: &RuleSet, shadow: &RuleSet, returned: &BTreeSet<String>) -> Result<(), usize> {
    let (Some(live), Some(theirs)) = (live.referenced_traits(), shadow.referenced_traits()) else {
        // Either reads any trait: the lookup asks for all of them already.
        return Ok(());
    };
    let asked = live
        .union(theirs)
        .chain(returned.iter())
        .collect::<BTreeSet<_>>()
        .len();
    if asked > usize::from(TraitsQuery::MAX_LIMIT) {
        return Err(asked);
    }
    Ok(())
}

/// The rule name a decision of the emergency override carries.
pub const OVERRIDE_RULE: &str = "emergency-override";

/// Every customer to `transition`, whatever the rules say: the emergency override.
pub fn overridden(transition: String) -> (Decision, Lookup) {
    let verdict = Verdict {
        transition,
        rule: OVERRIDE_RULE.to_owned(),
        attributes: Map::new(),
    };
    (decision(verdict, false, false, None), Lookup::Overridden)
}

fn decision(
    verdict: Verdict,
    fallback: bool,
    profile_found: bool,
    explanation: Option<Vec<RuleTrace>>,
) -> Decision {
    Decision {
        transition: verdict.transition,
        rule: verdict.rule,
        fallback,
        profile_found,
        attributes: verdict.attributes,
        explanation,
        traits: None,
        traits_from: None,
        shadow: None,
        experiment: None,
        arm: None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::adapters::memory::MemoryProfiles;
    use crate::domain::ports::ProfileError;
    use crate::domain::rules::DEFAULT_RULES;

    const PHONE: &str = "phone:+15555550100";

    /// What the store was asked for, as `include=` values.
    fn includes(profiles: &MemoryProfiles) -> Vec<Option<String>> {
        profiles
            .asked()
            .iter()
            .map(|(_, query)| query.included().map(str::to_owned))
            .collect()
    }

    fn customer() -> DecisionRequest {
        let fields = json!({"From": "+15555550100"});
        let customer = Identifier::from_fields(fields.as_object().unwrap(), "phone").unwrap();
        DecisionRequest {
            subject: Subject::Customer(customer.identifier().unwrap().clone()),
            channel: None,
            explain: false,
            returning: Arc::default(),
        }
    }

    async fn run(profiles: &MemoryProfiles) -> (Decision, Lookup) {
        let rules = Arc::new(RuleSet::compile(DEFAULT_RULES).unwrap());
        decide(profiles, &rules, &customer(), Duration::from_millis(50)).await
    }

    #[tokio::test]
    async fn a_shadow_whose_traits_no_longer_fit_one_lookup_sits_the_decision_out() {
        let profiles = MemoryProfiles::new().with(PHONE, json!({"docs_last_2_days": 3}));
        let rules = Arc::new(RuleSet::compile(DEFAULT_RULES).unwrap());
        let shadow = Arc::new(
            RuleSet::compile(r#"{"rules": [{"name": "s", "when": "traits.plan == 'gold'", "transition": "agent"}], "default": "bot", "on_error": "bot"}"#)
                .unwrap(),
        );
        // With the live rules' one trait, 199 returned ones fill the lookup: no room for
        // `plan`, and the shadow sits out; with 198, it fits and is judged.
        for (returned, judged) in [(199, false), (198, true)] {
            let mut request = customer();
            request.returning = Arc::new((0..returned).map(|n| format!("r{n}")).collect());
            let budget = Duration::from_millis(50);
            let (decision, _) =
                decide_beside(&profiles, &rules, Some(&shadow), &request, budget).await;
            assert_eq!(decision.transition, "agent");
            let asked = includes(&profiles).pop().flatten().unwrap_or_default();
            let keys: Vec<&str> = asked.split(',').collect();
            assert_eq!(keys.contains(&"plan"), judged, "{returned}: {asked}");
            assert!(keys.len() <= 200, "{returned}: {} keys", keys.len());
            let shadow_said = decision.shadow.map(|s| s.transition);
            assert_eq!(shadow_said.is_some(), judged, "{returned}");
        }
    }

    #[tokio::test]
    async fn a_docs_reader_goes_to_an_agent_and_only_the_needed_trait_is_asked_for() {
        let profiles = MemoryProfiles::new().with(PHONE, json!({"docs_last_2_days": 3}));
        let (decision, lookup) = run(&profiles).await;
        assert_eq!(
            (decision.transition.as_str(), decision.rule.as_str()),
            ("agent", "read-docs-recently")
        );
        assert!(decision.profile_found && !decision.fallback);
        assert_eq!(lookup, Lookup::Found(TraitsFrom::ProfileApi));
        assert_eq!(includes(&profiles), [Some("docs_last_2_days".to_owned())]);
    }

    #[tokio::test]
    async fn an_unknown_customer_is_decided_by_the_rules_not_as_an_error() {
        let (decision, lookup) = run(&MemoryProfiles::new()).await;
        assert_eq!(
            (
                decision.transition.as_str(),
                decision.fallback,
                decision.profile_found
            ),
            ("bot", false, false)
        );
        assert_eq!(lookup, Lookup::NotFound);
    }

    #[tokio::test]
    async fn a_failed_or_slow_lookup_falls_back_to_on_error() {
        let (failed, lookup) = run(&MemoryProfiles::failing(ProfileError::Status(500))).await;
        assert_eq!(
            (
                failed.transition.as_str(),
                failed.rule.as_str(),
                failed.fallback
            ),
            ("agent", "on_error", true)
        );
        assert_eq!(lookup, Lookup::Failed(ProfileError::Status(500)));
        let (slow, lookup) = run(&MemoryProfiles::hanging()).await;
        assert_eq!((slow.transition.as_str(), slow.fallback), ("agent", true));
        assert_eq!(lookup, Lookup::DeadlineExceeded);
    }

    #[tokio::test]
    async fn inline_traits_and_trait_free_rules_need_no_lookup() {
        let profiles = MemoryProfiles::failing(ProfileError::Status(500));
        let rules = Arc::new(RuleSet::compile(DEFAULT_RULES).unwrap());
        let inline = DecisionRequest {
            subject: Subject::Traits(json!({"docs_last_2_days": 1}).as_object().cloned().unwrap()),
            channel: None,
            explain: false,
            returning: Arc::default(),
        };
        let (decision, lookup) =
            decide(&profiles, &rules, &inline, Duration::from_millis(50)).await;
        assert_eq!(
            (decision.transition.as_str(), lookup),
            ("agent", Lookup::Inline)
        );

        let by_channel = Arc::new(RuleSet::compile(
            r#"{"rules": [{"name": "voice", "when": "channel == 'voice'", "transition": "agent"}], "default": "bot", "on_error": "agent"}"#,
        )
        .unwrap());
        let mut request = customer();
        request.channel = Some("voice".into());
        let (decision, lookup) =
            decide(&profiles, &by_channel, &request, Duration::from_millis(50)).await;
        assert_eq!(
            (decision.transition.as_str(), lookup),
            ("agent", Lookup::NotNeeded)
        );
        assert!(profiles.asked().is_empty());
    }

    #[tokio::test]
    async fn an_explanation_is_given_only_when_asked_and_says_when_the_rules_did_not_run() {
        let rules = Arc::new(RuleSet::compile(DEFAULT_RULES).unwrap());
        let profiles = MemoryProfiles::new().with(PHONE, json!({"docs_last_2_days": "3"}));
        let (plain, _) = decide(&profiles, &rules, &customer(), Duration::from_millis(50)).await;
        assert_eq!(plain.explanation, None);
        let asked = DecisionRequest {
            explain: true,
            ..customer()
        };
        let (explained, _) = decide(&profiles, &rules, &asked, Duration::from_millis(50)).await;
        // A count sent as a string is why the docs reader went to the bot.
        assert_eq!(explained.rule, "default");
        let trace = explained.explanation.unwrap_or_default();
        assert_eq!(
            (trace[0].rule.as_str(), trace[0].outcome),
            (
                "read-docs-recently",
                crate::domain::rules::TraceOutcome::WrongType
            )
        );
        let failing = MemoryProfiles::failing(ProfileError::Status(500));
        let (fallback, _) = decide(&failing, &rules, &asked, Duration::from_millis(50)).await;
        assert_eq!(
            fallback.explanation.unwrap_or_default()[0].outcome,
            crate::domain::rules::TraceOutcome::NotEvaluated
        );
    }

    #[tokio::test]
    async fn a_withheld_caller_is_decided_as_unknown_without_a_lookup() {
        let profiles = MemoryProfiles::failing(ProfileError::Status(500));
        let rules = Arc::new(RuleSet::compile(DEFAULT_RULES).unwrap());
        let request = DecisionRequest {
            subject: Subject::Withheld,
            channel: None,
            explain: false,
            returning: Arc::default(),
        };
        let (decision, lookup) =
            decide(&profiles, &rules, &request, Duration::from_millis(50)).await;
        assert_eq!(
            (
                decision.transition.as_str(),
                decision.fallback,
                decision.profile_found
            ),
            ("bot", false, false)
        );
        assert_eq!(lookup, Lookup::Withheld);
        assert!(profiles.asked().is_empty());
    }

    #[tokio::test]
    async fn the_traits_asked_back_are_looked_up_with_the_rules_and_returned_when_found() {
        let rules = Arc::new(RuleSet::compile(DEFAULT_RULES).unwrap());
        let profiles = MemoryProfiles::new().with(
            PHONE,
            json!({"docs_last_2_days": 3, "first_name": "Ann", "plan": "gold"}),
        );
        let request = DecisionRequest {
            returning: Arc::new(["first_name".to_owned(), "nickname".to_owned()].into()),
            ..customer()
        };
        let (decision, lookup) =
            decide(&profiles, &rules, &request, Duration::from_millis(50)).await;
        assert_eq!(lookup, Lookup::Found(TraitsFrom::ProfileApi));
        // Only those named, only those the profile holds.
        assert_eq!(
            decision.traits,
            Some(json!({"first_name": "Ann"}).as_object().unwrap().clone())
        );
        // One request, asking for the rules' traits and the returned ones together.
        let asked = includes(&profiles);
        assert_eq!(asked.len(), 1);
        let include = asked[0].clone().unwrap_or_default();
        for name in ["first_name", "nickname", "docs_last_2_days"] {
            assert!(include.split(',').any(|n| n == name), "{include}");
        }
        // A customer Segment does not know gets no traits back, and neither does a plain request.
        let unknown = MemoryProfiles::new();
        let (decision, _) = decide(&unknown, &rules, &request, Duration::from_millis(50)).await;
        assert_eq!(decision.traits, None);
        let (plain, _) = decide(&profiles, &rules, &customer(), Duration::from_millis(50)).await;
        assert_eq!(plain.traits, None);
    }

    #[tokio::test]
    async fn rules_that_read_no_trait_still_look_up_the_traits_asked_back() {
        let rules = Arc::new(
            RuleSet::compile(r#"{"rules": [], "default": "bot", "on_error": "agent"}"#).unwrap(),
        );
        let profiles = MemoryProfiles::new().with(PHONE, json!({"first_name": "Ann"}));
        let (_, lookup) = decide(&profiles, &rules, &customer(), Duration::from_millis(50)).await;
        assert_eq!(lookup, Lookup::NotNeeded);
        let request = DecisionRequest {
            returning: Arc::new(["first_name".to_owned()].into()),
            ..customer()
        };
        let (decision, lookup) =
            decide(&profiles, &rules, &request, Duration::from_millis(50)).await;
        assert_eq!(lookup, Lookup::Found(TraitsFrom::ProfileApi));
        assert_eq!(decision.traits.unwrap()["first_name"], "Ann");
        assert_eq!(includes(&profiles), [Some("first_name".to_owned())]);
    }
}
