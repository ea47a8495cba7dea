//! Logs that can repeat (a guest calling the same failing call in a loop)
//! are said at most once a period, with how many were held back.

use std::time::{Duration, Instant};

/// One log line per period at most.
#[derive(Debug, Clone)]
pub struct Every {
    period: Duration,
    last: Option<Instant>,
    held: u64,
}

impl Every {
    pub fn new(period: Duration) -> Every {
        Every {
            period,
            last: None,
            held: 0,
        }
    }

    /// One line a second.
    pub fn second() -> Every {
        Every::new(Duration::from_secs(1))
    }

    /// `Some(held)` if a line may be logged now (`held` lines were held
    /// back since the last one), `None` if this one is held back.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < self.period)
        {
            self.held += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_period_with_the_count_of_the_rest() {
        let mut e = Every::new(Duration::from_millis(200));
        assert_eq!(e.allow(), Some(0));
        for _ in 0..1000 {
            assert_eq!(e.allow(), None);
        }
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(e.allow(), Some(1000));
        assert_eq!(e.allow(), None);
    }
}
