//! Text a guest controls — log messages, its `describe` strings, the reason
//! it refuses to open — on its way into the host's log: bounded in length,
//! control characters escaped (so a guest cannot forge a line that seems to
//! come from the host or another device), and guest logging rate-limited per
//! device (so a logging loop cannot flood the journal or slow other devices).

use std::borrow::Cow;
use std::time::Instant;

/// Longest guest log line kept, in bytes.
pub const MAX_LOG_LINE: usize = 1024;
/// Longest handler description, open error or fault detail kept.
pub const MAX_GUEST_TEXT: usize = 512;

/// `text` cut to at most `max` bytes (on a character boundary, with a note
/// of what was cut) and with every control character escaped (`\n`, `\r`,
/// `\t`, `\u{…}`), including Unicode line separators and bidi controls.
pub fn sanitize(text: &str, max: usize) -> Cow<'_, str> {
    let needs_escape = |c: char| {
        c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if text.len() <= max && !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max) + 32);
    let mut consumed = 0;
    for c in text.chars() {
        let piece: Cow<'_, str> = match c {
            '\n' => "\\n".into(),
            '\r' => "\\r".into(),
            '\t' => "\\t".into(),
            c if needs_escape(c) => format!("\\u{{{:x}}}", c as u32).into(),
            c => c.encode_utf8(&mut [0; 4]).to_owned().into(),
        };
        if out.len() + piece.len() > max {
            break;
        }
        out.push_str(&piece);
        consumed += c.len_utf8();
    }
    if consumed < text.len() {
        out.push_str(&format!("…[{} more bytes]", text.len() - consumed));
    }
    Cow::Owned(out)
}

/// A token bucket: `burst` lines at once, then `per_second`.
#[derive(Debug)]
pub struct LogLimiter {
    burst: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
    suppressed: u64,
}

/// What to do with one line.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Log it; first report that `suppressed` lines were dropped, if any.
    Log {
        /// Lines dropped since the last one logged.
        suppressed: u64,
    },
    /// Drop it.
    Drop,
}

impl LogLimiter {
    /// A bucket of `burst` lines refilled at `per_second`.
    pub fn new(burst: u32, per_second: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self { burst, per_second: f64::from(per_second), tokens: burst, last: Instant::now(), suppressed: 0 }
    }

    /// Decide about one line at `now`.
    pub fn admit(&mut self, now: Instant) -> Verdict {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Verdict::Log { suppressed: std::mem::take(&mut self.suppressed) }
        } else {
            self.suppressed += 1;
            Verdict::Drop
        }
    }

    /// Lines dropped and not yet reported.
    pub fn pending_suppressed(&self) -> u64 {
        self.suppressed
    }
}

impl Default for LogLimiter {
    /// 100 lines at once, 20 a second after that.
    fn default() -> Self {
        Self::new(100, 20)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// How long a refilling bucket needs for one line.
    fn refill_interval(per_second: u32) -> Duration {
        Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)))
    }

    #[test]
    fn plain_short_text_is_borrowed() {
        assert!(matches!(sanitize("disk ready", 64), Cow::Borrowed("disk ready")));
    }

    #[test]
    fn newlines_and_controls_cannot_forge_lines() {
        let forged = "ok\n2026-12-01T00:00:00Z ERROR device=disk1: handler fault\r\x1b[31m";
        let clean = sanitize(forged, 1024);
        assert!(!clean.contains('\n') && !clean.contains('\r') && !clean.contains('\x1b'), "{clean}");
        assert!(clean.starts_with("ok\\n2026"), "{clean}");
        assert!(clean.ends_with("\\r\\u{1b}[31m"), "{clean}");
        assert_eq!(sanitize("a\u{2028}b\u{202e}c", 64), "a\\u{2028}b\\u{202e}c");
    }

    #[test]
    fn long_text_is_cut_on_a_char_boundary_with_a_note() {
        let long = "é".repeat(1000); // 2000 bytes
        let cut = sanitize(&long, 101);
        assert!(cut.starts_with(&"é".repeat(50)), "{cut}");
        assert!(cut.ends_with("…[1900 more bytes]"), "{cut}");
        assert!(cut.len() < 101 + 32);
    }

    #[test]
    fn the_limiter_allows_a_burst_then_the_rate() {
        let mut l = LogLimiter::new(3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(l.admit(t0), Verdict::Log { suppressed: 0 });
        }
        assert_eq!(l.admit(t0), Verdict::Drop);
        assert_eq!(l.admit(t0), Verdict::Drop);
        assert_eq!(l.pending_suppressed(), 2);
        // 100 ms later one token is back, and the drop count is reported once.
        let t1 = t0 + refill_interval(10);
        assert_eq!(l.admit(t1), Verdict::Log { suppressed: 2 });
        assert_eq!(l.admit(t1), Verdict::Drop);
        // A long quiet spell refills at most the burst.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..3 {
            assert!(matches!(l.admit(t2), Verdict::Log { .. }));
        }
        assert_eq!(l.admit(t2), Verdict::Drop);
    }
}
