//! Single flight: concurrent lookups of one key share one request. On Lambda Managed
//! Instances one environment serves many conversations at once, and a burst of messages from
//! one customer would otherwise send one Profile API request each, against a limit of 100
//! a second per space.
//!
//! The shared request runs as its own task, so a caller that stops waiting (its deadline
//! came first) cancels nothing: the others still get the answer.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// Requests in flight by key. The value is what every waiter of that key gets.
pub struct InFlight<K, V> {
    pending: Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
}

/// Whether a caller started the request or joined one already running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flight {
    Started,
    Joined,
}

impl<K, V> Default for InFlight<K, V> {
    fn default() -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> InFlight<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn lock(&self) -> MutexGuard<'_, HashMap<K, watch::Receiver<Option<V>>>> {
        // Every operation leaves the map whole, so a panic elsewhere does not make it wrong.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The answer of the request for `key`: the one in flight, or `request()` spawned now.
    /// `None` only if the shared request's task ended without an answer (it panicked).
    ///
    /// `request` must leave its answer wherever later callers look first (the cache) before
    /// it returns: the key stops being in flight as soon as it has.
    pub async fn get<F>(
        self: &Arc<Self>,
        key: K,
        request: impl FnOnce() -> F,
    ) -> (Option<V>, Flight)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let (mut answer, flight) = self.join(key, request);
        let value = answer
            .wait_for(Option::is_some)
            .await
            .ok()
            .and_then(|value| value.clone());
        (value, flight)
    }

    /// Like [`Self::get`], without waiting for the answer: for a caller that has a value to
    /// go on with meanwhile (a stale secret), and only wants a newer one to be on its way.
    pub fn start<F>(self: &Arc<Self>, key: K, request: impl FnOnce() -> F) -> Flight
    where
        F: Future<Output = V> + Send + 'static,
    {
        self.join(key, request).1
    }

    /// The answer channel of the request for `key`, spawning `request()` if none is in flight.
    fn join<F>(
        self: &Arc<Self>,
        key: K,
        request: impl FnOnce() -> F,
    ) -> (watch::Receiver<Option<V>>, Flight)
    where
        F: Future<Output = V> + Send + 'static,
    {
        let mut pending = self.lock();
        if let Some(running) = pending.get(&key) {
            return (running.clone(), Flight::Joined);
        }
        let (sender, receiver) = watch::channel(None);
        pending.insert(key.clone(), receiver.clone());
        let landing = Landing {
            flights: self.clone(),
            key,
        };
        let request = request();
        tokio::spawn(async move {
            let value = request.await;
            // Off the map before the answer goes out: a caller arriving between finds the
            // cache filled, or (after a failure) starts afresh.
            drop(landing);
            let _ = sender.send(Some(value));
        });
        (receiver, Flight::Started)
    }

    /// How many keys have a request in flight.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Takes a key off the map when its request ends, however it ends (a panic included).
struct Landing<K: Hash + Eq, V> {
    flights: Arc<InFlight<K, V>>,
    key: K,
}

impl<K: Hash + Eq, V> Drop for Landing<K, V> {
    fn drop(&mut self) {
        self.flights
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    type Flights = Arc<InFlight<&'static str, u32>>;

    /// A request that counts itself and answers `value` after `delay`.
    fn counted(
        requests: &Arc<AtomicUsize>,
        value: u32,
        delay: Duration,
    ) -> impl Future<Output = u32> + Send + 'static {
        let requests = requests.clone();
        async move {
            requests.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            value
        }
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_of_one_key_share_one_request() {
        let flights: Flights = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let callers = (0..32).map(|_| {
            let (flights, requests) = (flights.clone(), requests.clone());
            tokio::spawn(async move {
                flights
                    .get("ann", || counted(&requests, 7, Duration::from_millis(150)))
                    .await
            })
        });
        let mut started = 0;
        for caller in callers.collect::<Vec<_>>() {
            let (value, flight) = caller.await.unwrap();
            assert_eq!(value, Some(7));
            started += usize::from(flight == Flight::Started);
        }
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        assert_eq!(started, 1);
        assert!(flights.is_empty(), "nothing left in flight");
    }

    #[tokio::test(start_paused = true)]
    async fn different_keys_do_not_wait_for_each_other() {
        let flights: Flights = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let slow = flights.get("ann", || counted(&requests, 1, Duration::from_secs(5)));
        let fast = flights.get("bob", || counted(&requests, 2, Duration::from_millis(10)));
        tokio::select! {
            _ = slow => panic!("the slow key answered first"),
            (value, _) = fast => assert_eq!(value, Some(2)),
        }
        assert_eq!(requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_stops_waiting_cancels_nothing() {
        let flights: Flights = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        // The first caller gives up after 50 ms of a 150 ms request.
        let impatient = tokio::time::timeout(
            Duration::from_millis(50),
            flights.get("ann", || counted(&requests, 7, Duration::from_millis(150))),
        );
        assert!(impatient.await.is_err());
        // A later caller joins the same request and gets its answer.
        let (value, flight) = flights
            .get("ann", || counted(&requests, 8, Duration::ZERO))
            .await;
        assert_eq!((value, flight), (Some(7), Flight::Joined));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_request_lands_the_next_caller_starts_a_new_one() {
        let flights: Flights = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let first = flights
            .get("ann", || counted(&requests, 1, Duration::ZERO))
            .await;
        let second = flights
            .get("ann", || counted(&requests, 2, Duration::ZERO))
            .await;
        assert_eq!(first, (Some(1), Flight::Started));
        assert_eq!(second, (Some(2), Flight::Started));
    }

    #[tokio::test(start_paused = true)]
    async fn a_started_request_runs_without_a_waiter_and_later_callers_join_it() {
        let flights: Flights = Arc::default();
        let requests = Arc::new(AtomicUsize::new(0));
        let delay = Duration::from_millis(150);
        assert_eq!(
            flights.start("ann", || counted(&requests, 7, delay)),
            Flight::Started
        );
        assert_eq!(
            flights.start("ann", || counted(&requests, 8, delay)),
            Flight::Joined
        );
        let (value, flight) = flights.get("ann", || counted(&requests, 9, delay)).await;
        assert_eq!((value, flight), (Some(7), Flight::Joined));
        assert_eq!(requests.load(Ordering::SeqCst), 1);
        assert!(flights.is_empty());
    }

    #[tokio::test]
    async fn a_request_that_panics_answers_none_and_leaves_nothing_in_flight() {
        let flights: Flights = Arc::default();
        let (value, _) = flights
            .get("ann", || async { panic!("the request broke") })
            .await;
        assert_eq!(value, None);
        assert!(flights.is_empty());
    }
}
