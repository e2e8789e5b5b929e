//! One secret of the function: given in the environment, or fetched through the Parameters
//! and Secrets extension and refreshed while the function runs.
//!
//! One environment serves several invocations at once (Lambda Managed Instances), and the
//! extension can be slow or hang (on a cache miss it calls Secrets Manager itself). Callers
//! queued behind one another, each fetching again, once answered eight decisions at 2, 4, ...
//! 16 s. So:
//! - one fetch at a time for the environment, shared by whoever needs it meanwhile
//!   ([`InFlight`]); it runs as a task of its own, so a caller that stops waiting cancels
//!   nothing and the next callers get what it brings;
//! - a caller that holds a value uses it at once, even one older than `SECRETS_TTL_SECS`:
//!   the stale value only starts the refresh, in the background;
//! - a caller with no value waits for the fetch until its own deadline, no longer;
//! - after a failed fetch none starts for [`FAILURE_BACK_OFF`]: the callers meanwhile get
//!   that failure, or the value they hold, rather than each asking the extension again. A
//!   refresh that fails keeps the last good value in use.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::{Requirement, Secret, SecretError, SecretsExtension};
use crate::adapters::extension::FETCH_TIMEOUT;
use crate::support::in_flight::InFlight;

/// How long after a failed fetch no other starts.
pub const FAILURE_BACK_OFF: Duration = Duration::from_secs(1);

/// The one fetch in flight for a secret, and what its waiters get.
type Flights = InFlight<(), Result<Arc<Secret>, SecretError>>;

/// One secret of the function: its value, or where to fetch it from.
pub struct SecretCell {
    name: &'static str,
    source: Source,
}

enum Source {
    Given(Arc<Secret>),
    Fetched(Arc<Fetched>),
}

struct Fetched {
    name: &'static str,
    secret_id: String,
    requirement: Requirement,
    extension: Arc<SecretsExtension>,
    state: Mutex<State>,
    flights: Arc<Flights>,
}

#[derive(Default)]
struct State {
    held: Option<Held>,
    /// The last fetch's failure, until a fetch succeeds.
    failed: Option<(Instant, SecretError)>,
}

#[derive(Clone)]
struct Held {
    value: Arc<Secret>,
    fetched_at: Instant,
}

impl SecretCell {
    /// A secret fetched from Secrets Manager (`secret_id`) through the extension when first
    /// needed, and checked against `requirement` when it arrives.
    pub fn fetched(
        name: &'static str,
        secret_id: String,
        requirement: Requirement,
        extension: &Arc<SecretsExtension>,
    ) -> Self {
        let fetched = Fetched {
            name,
            secret_id,
            requirement,
            extension: extension.clone(),
            state: Mutex::default(),
            flights: Arc::default(),
        };
        Self {
            name,
            source: Source::Fetched(Arc::new(fetched)),
        }
    }

    /// A secret known up front (tests, the sandbox).
    pub fn given(name: &'static str, secret: Secret) -> Self {
        Self {
            name,
            source: Source::Given(Arc::new(secret)),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The value, for a caller that must have it by `deadline`: see the module's
    /// documentation.
    pub async fn get(&self, deadline: Instant) -> Result<Arc<Secret>, SecretError> {
        let fetched = match &self.source {
            Source::Given(secret) => return Ok(secret.clone()),
            Source::Fetched(fetched) => fetched,
        };
        let (held, backing_off) = fetched.current();
        if let Some(held) = held {
            if held.fetched_at.elapsed() >= fetched.extension.ttl() && backing_off.is_none() {
                let refresh = fetched.clone();
                fetched.flights.start((), move || refresh.fetch());
            }
            return Ok(held.value);
        }
        if let Some(error) = backing_off {
            return Err(error);
        }
        let fetch = fetched.clone();
        let shared = fetched.flights.get((), move || fetch.fetch());
        match tokio::time::timeout_at(deadline.into(), shared).await {
            Ok((Some(answer), _)) => answer,
            Ok((None, _)) => Err(fetched.unavailable("the fetch ended without an answer")),
            Err(_) => Err(fetched.unavailable(
                "the Parameters and Secrets extension did not answer before this invocation's deadline (the fetch goes on, for the next invocations)",
            )),
        }
    }

    /// Fetches the secret now unless it is held (a warm-up is an invocation, so the
    /// extension answers), waiting at most one fetch.
    pub async fn warm_up(&self) {
        // A failure is logged by the fetch; the next caller tries again.
        let _ = self.get(Instant::now() + FETCH_TIMEOUT).await;
    }
}

impl Fetched {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every change leaves the state whole, so a panic elsewhere does not make it wrong.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is held, and the failure callers go on getting while the back-off lasts.
    fn current(&self) -> (Option<Held>, Option<SecretError>) {
        let state = self.state();
        let backing_off = state
            .failed
            .as_ref()
            .filter(|(at, _)| at.elapsed() < FAILURE_BACK_OFF)
            .map(|(_, error)| error.clone());
        (state.held.clone(), backing_off)
    }

    fn unavailable(&self, problem: &str) -> SecretError {
        SecretError::Unavailable {
            name: self.name,
            problem: problem.to_owned(),
        }
    }

    /// The one fetch in flight: leaves its outcome in the state before it returns, where
    /// callers look first (the single flight requires it).
    async fn fetch(self: Arc<Self>) -> Result<Arc<Secret>, SecretError> {
        let read = self.read().await;
        let mut state = self.state();
        let error = match read {
            Ok(secret) => {
                let value = Arc::new(secret);
                state.held = Some(Held {
                    value: value.clone(),
                    fetched_at: Instant::now(),
                });
                state.failed = None;
                return Ok(value);
            }
            Err(error) => error,
        };
        state.failed = Some((Instant::now(), error.clone()));
        let last_good = state.held.as_ref().map(|held| held.value.clone());
        drop(state);
        // Logged here, once per failed fetch, with the reason callers' answers leave out.
        match last_good {
            Some(value) => {
                tracing::warn!(secret = self.name, %error, "refreshing the secret failed; the last good value stays in use");
                Ok(value)
            }
            None => {
                tracing::error!(secret = self.name, %error, "the secret could not be read");
                Err(error)
            }
        }
    }

    async fn read(&self) -> Result<Secret, SecretError> {
        let name = self.name;
        let text = self.extension.secret_string(name, &self.secret_id).await?;
        let secret = Secret::new(&text).ok_or(SecretError::Unusable {
            name,
            problem: "its value is blank".into(),
        })?;
        self.requirement
            .check(&secret)
            .map_err(|problem| SecretError::Unusable { name, problem })?;
        Ok(secret)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::adapters::extension::stand_in::{Behaviour, LocalStandIn};
    use crate::adapters::http_client::HttpClient;

    const ID: &str = "studio-router/auth-token";

    fn secret(value: &str) -> Behaviour {
        Behaviour::Json(
            200,
            serde_json::json!({"Name": ID, "SecretString": value}).to_string(),
        )
    }

    /// The Auth Token, fetched from `stand_in`, each fetch cut at `timeout`.
    fn cell(stand_in: &LocalStandIn, ttl_secs: u64, timeout: Duration) -> Arc<SecretCell> {
        let vars: HashMap<&str, String> = HashMap::from([
            ("TWILIO_AUTH_TOKEN_SECRET_ID", ID.to_owned()),
            (
                "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT",
                stand_in.port().to_string(),
            ),
            ("SECRETS_TTL_SECS", ttl_secs.to_string()),
        ]);
        let env = |name: &str| vars.get(name).cloned();
        let vars = crate::support::environment::Variables::new(&env);
        let http = HttpClient::new(Duration::from_secs(1));
        let extension = crate::adapters::config::runtime::secrets_extension(&vars, http).unwrap();
        let extension = Arc::new(extension.with_timeout(timeout));
        let cell = crate::adapters::config::runtime::secret(
            &vars,
            "TWILIO_AUTH_TOKEN",
            Requirement::Any,
            &extension,
        );
        Arc::new(cell.unwrap().unwrap())
    }

    /// `n` callers at once, each with `wait` to its deadline: what each got.
    async fn at_once(
        cell: &Arc<SecretCell>,
        n: usize,
        wait: Duration,
    ) -> Vec<Result<String, SecretError>> {
        let callers: Vec<_> = (0..n)
            .map(|_| {
                let cell = cell.clone();
                tokio::spawn(async move {
                    let got = cell.get(Instant::now() + wait).await;
                    got.map(|secret| secret.expose().to_owned())
                })
            })
            .collect();
        let mut answers = Vec::new();
        for caller in callers {
            answers.push(caller.await.unwrap());
        }
        answers
    }

    fn failed(cell: &SecretCell) -> bool {
        matches!(&cell.source, Source::Fetched(f) if f.state().failed.is_some())
    }

    async fn until(what: impl Fn() -> bool) {
        for _ in 0..200 {
            if what() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("never happened");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn callers_without_a_value_share_one_fetch() {
        let stand_in = LocalStandIn::start(|_| {
            Behaviour::Slow(Duration::from_millis(200), Box::new(secret("s3cret")))
        });
        let cell = cell(&stand_in, 300, FETCH_TIMEOUT);
        let answers = at_once(&cell, 8, Duration::from_secs(5)).await;
        assert!(
            answers.iter().all(|a| a.as_deref() == Ok("s3cret")),
            "{answers:?}"
        );
        assert_eq!(stand_in.requests(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stale_value_serves_at_once_while_one_refresh_runs_and_a_failed_one_backs_off() {
        // GIVEN a value held past its TTL (0 s) and an extension that now hangs
        let stand_in = LocalStandIn::start(|n| {
            if n == 0 {
                secret("v1")
            } else {
                Behaviour::Hang
            }
        });
        let cell = cell(&stand_in, 0, FETCH_TIMEOUT);
        assert_eq!(
            cell.get(Instant::now() + FETCH_TIMEOUT)
                .await
                .unwrap()
                .expose(),
            "v1"
        );
        // WHEN eight callers come at once, each with 100 ms to spare
        let started = Instant::now();
        let answers = at_once(&cell, 8, Duration::from_millis(100)).await;
        // THEN each has the held value at once (not after the refresh's 2 s), and one refresh
        // went out
        assert!(
            answers.iter().all(|a| a.as_deref() == Ok("v1")),
            "{answers:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        until(|| stand_in.requests() == 2).await;
        // AND once it has failed, no other starts during the back-off (given time to arrive,
        // one would have)
        until(|| failed(&cell)).await;
        let answers = at_once(&cell, 8, Duration::from_millis(100)).await;
        assert!(
            answers.iter().all(|a| a.as_deref() == Ok("v1")),
            "{answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(stand_in.requests(), 2);
        // AND after it the next caller starts one
        tokio::time::sleep(FAILURE_BACK_OFF).await;
        assert_eq!(cell.get(Instant::now()).await.unwrap().expose(), "v1");
        until(|| stand_in.requests() == 3).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_caller_without_a_value_waits_no_longer_than_its_deadline() {
        let stand_in = LocalStandIn::start(|_| Behaviour::Hang);
        let cell = cell(&stand_in, 300, FETCH_TIMEOUT);
        let started = Instant::now();
        let answers = at_once(&cell, 4, Duration::from_millis(200)).await;
        assert!(
            started.elapsed() < Duration::from_millis(1000),
            "{:?}",
            started.elapsed()
        );
        for answer in &answers {
            let error = answer.as_ref().unwrap_err();
            assert!(matches!(error, SecretError::Unavailable { .. }), "{error}");
            assert!(
                error
                    .to_string()
                    .contains("before this invocation's deadline"),
                "{error}"
            );
        }
        // The fetch goes on: a later caller joins it rather than starting another.
        let _ = cell.get(Instant::now() + Duration::from_millis(50)).await;
        assert_eq!(stand_in.requests(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_first_fetch_is_every_waiters_and_is_not_retried_during_the_back_off() {
        let refusal = Behaviour::Json(
            500,
            r#"{"message": "Secrets Manager could not be reached"}"#.into(),
        );
        let stand_in = LocalStandIn::start(move |_| {
            Behaviour::Slow(Duration::from_millis(200), Box::new(refusal.clone()))
        });
        let cell = cell(&stand_in, 300, FETCH_TIMEOUT);
        let answers = at_once(&cell, 4, Duration::from_secs(5)).await;
        for answer in &answers {
            assert!(
                answer
                    .as_ref()
                    .is_err_and(|e| e.to_string().contains("HTTP 500")),
                "{answer:?}"
            );
        }
        assert_eq!(stand_in.requests(), 1);
        let again = cell.get(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(again.err(), answers[0].clone().err());
        assert_eq!(stand_in.requests(), 1, "not retried during the back-off");
        tokio::time::sleep(FAILURE_BACK_OFF).await;
        let _ = cell.get(Instant::now() + Duration::from_secs(5)).await;
        assert_eq!(stand_in.requests(), 2, "tried again after it");
    }
}
