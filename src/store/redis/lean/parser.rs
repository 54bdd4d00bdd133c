//! A RESP2 reply parser that resumes where the input ran out: a reply split across
//! reads is parsed once, element by element (the finished elements of an unfinished
//! array are kept, never parsed again), and many replies in one read come out one by
//! one. It produces `redis::Value`s as redis-rs's own parser does, so everything above
//! (`FromRedisValue`, `extract_error`) works unchanged.

use redis::{ErrorKind, RedisError, RedisResult, Value};

/// Arrays nested deeper than this are refused (redis-rs's limit too).
const MAX_DEPTH: usize = 100;
/// At most this many elements are allocated up front for an array, whatever its header
/// claims (a bogus length must not reserve gigabytes).
const MAX_PREALLOC: usize = 1024;

/// The arrays of the reply being parsed that are still open.
#[derive(Debug, Default)]
pub(super) struct Parser {
    /// Per open array, outermost first: its elements so far, and how many are missing.
    open: Vec<(Vec<Value>, usize)>,
}

/// One element read from the input.
enum Element {
    /// A whole value (a scalar, an empty or null array).
    Value(Value),
    /// The header of an array of this many elements (at least one).
    Array(usize),
}

impl Parser {
    /// Parses from `input`: the bytes consumed (they are never needed again, even when no
    /// reply is finished yet) and the next whole reply, if the input held its end.
    ///
    /// # Errors
    /// A protocol error: the stream cannot be trusted any more.
    pub(super) fn parse(&mut self, input: &[u8]) -> RedisResult<(usize, Option<Value>)> {
        let mut at = 0;
        while let Some((used, element)) = element(&input[at..])? {
            at += used;
            let value = match element {
                Element::Value(value) => value,
                Element::Array(len) => {
                    if self.open.len() >= MAX_DEPTH {
                        return Err(protocol("arrays nested too deep"));
                    }
                    self.open
                        .push((Vec::with_capacity(len.min(MAX_PREALLOC)), len));
                    continue;
                }
            };
            if let Some(reply) = self.attach(value) {
                return Ok((at, Some(reply)));
            }
        }
        Ok((at, None))
    }

    /// Puts a finished value into the innermost open array, closing every array it fills;
    /// the value itself when it is a whole reply.
    fn attach(&mut self, mut value: Value) -> Option<Value> {
        loop {
            let Some((items, missing)) = self.open.last_mut() else {
                return Some(value);
            };
            items.push(value);
            *missing -= 1;
            if *missing > 0 {
                return None;
            }
            let (items, _) = self.open.pop()?;
            value = Value::Array(items);
        }
    }
}

/// The next element of `input` and its length, or `None` when the input ends before it.
fn element(input: &[u8]) -> RedisResult<Option<(usize, Element)>> {
    let Some(&kind) = input.first() else {
        return Ok(None);
    };
    let Some(end) = line_end(input)? else {
        return Ok(None);
    };
    let line = &input[1..end];
    let after = end + 2;
    let value = match kind {
        b'+' if line == b"OK" => Value::Okay,
        b'+' => Value::SimpleString(String::from_utf8_lossy(line).into_owned()),
        b'-' => server_error(&input[..after])?,
        b':' => Value::Int(integer(line)?),
        b'$' => return bulk(input, integer(line)?, after),
        b'*' => match integer(line)? {
            len if len < 0 => Value::Nil,
            0 => Value::Array(Vec::new()),
            len => {
                let len = usize::try_from(len).map_err(|_| protocol("array too long"))?;
                return Ok(Some((after, Element::Array(len))));
            }
        },
        _ => return Err(protocol("unknown reply type")),
    };
    Ok(Some((after, Element::Value(value))))
}

/// A bulk string of `len` bytes starting at `start`, if the input holds it all.
fn bulk(input: &[u8], len: i64, start: usize) -> RedisResult<Option<(usize, Element)>> {
    if len < 0 {
        return Ok(Some((start, Element::Value(Value::Nil))));
    }
    let len = usize::try_from(len).map_err(|_| protocol("bulk string too long"))?;
    let end = start
        .checked_add(len)
        .ok_or_else(|| protocol("bulk string too long"))?;
    let Some(tail) = input.get(end..end.saturating_add(2)) else {
        return Ok(None);
    };
    if tail.len() < 2 {
        return Ok(None);
    }
    if tail != b"\r\n" {
        return Err(protocol("a bulk string does not end with CRLF"));
    }
    let value = Value::BulkString(input[start..end].to_vec());
    Ok(Some((end + 2, Element::Value(value))))
}

/// Where the first line's `\r\n` starts, if the input holds it.
fn line_end(input: &[u8]) -> RedisResult<Option<usize>> {
    let Some(newline) = input.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    match newline.checked_sub(1) {
        Some(end) if end > 0 && input[end] == b'\r' => Ok(Some(end)),
        _ => Err(protocol("a line does not end with CRLF")),
    }
}

/// A decimal `i64`, as Redis writes lengths and integers.
fn integer(digits: &[u8]) -> RedisResult<i64> {
    let (negative, digits) = match digits.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, digits),
    };
    if digits.is_empty() {
        return Err(protocol("expected an integer"));
    }
    let mut n: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return Err(protocol("expected an integer"));
        }
        let digit = i64::from(d - b'0');
        n = n
            .checked_mul(10)
            .and_then(|n| {
                if negative {
                    n.checked_sub(digit)
                } else {
                    n.checked_add(digit)
                }
            })
            .ok_or_else(|| protocol("integer out of range"))?;
    }
    Ok(n)
}

/// An error reply, classified by redis-rs itself (its `ServerError` cannot be built
/// outside it), so that `extract_error` and the error kinds work as on its connections.
/// Error replies are rare: the cost of its parser does not matter here.
fn server_error(line: &[u8]) -> RedisResult<Value> {
    match redis::parse_redis_value(line)? {
        error @ Value::ServerError(_) => Ok(error),
        _ => Err(protocol("an error reply did not parse as one")),
    }
}

fn protocol(what: &'static str) -> RedisError {
    RedisError::from((
        ErrorKind::Parse,
        "invalid reply from redis",
        what.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use redis::ServerErrorKind;

    use super::*;

    /// Every reply in `input`, fed whole.
    fn all(input: &[u8]) -> Vec<Value> {
        let mut parser = Parser::default();
        let mut at = 0;
        let mut out = Vec::new();
        loop {
            let (used, reply) = parser.parse(&input[at..]).expect("valid");
            at += used;
            match reply {
                Some(reply) => out.push(reply),
                None => break,
            }
        }
        assert_eq!(at, input.len(), "everything consumed");
        out
    }

    /// Every reply in `input`, fed in pieces of `step` bytes (kept unconsumed bytes
    /// carried over, as the connection does).
    fn in_pieces(input: &[u8], step: usize) -> Vec<Value> {
        let mut parser = Parser::default();
        let mut pending = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(step) {
            pending.extend_from_slice(piece);
            loop {
                let (used, reply) = parser.parse(&pending).expect("valid");
                pending.drain(..used);
                match reply {
                    Some(reply) => out.push(reply),
                    None => break,
                }
            }
        }
        assert!(pending.is_empty(), "everything consumed");
        out
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    const MIXED: &[u8] =
        b"+OK\r\n+PONG\r\n:42\r\n:-7\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n*0\r\n\
*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n$-1\r\n*0\r\n-ERR unknown command\r\n$4\r\na\r\nb\r\n";

    fn mixed() -> Vec<Value> {
        vec![
            Value::Okay,
            Value::SimpleString("PONG".into()),
            Value::Int(42),
            Value::Int(-7),
            bulk("hello"),
            bulk(""),
            Value::Nil,
            Value::Nil,
            Value::Array(vec![]),
            Value::Array(vec![
                Value::Int(1),
                Value::Array(vec![bulk("a"), Value::Array(vec![Value::Nil])]),
                Value::Array(vec![]),
            ]),
            redis::parse_redis_value(b"-ERR unknown command\r\n").expect("an error"),
            bulk("a\r\nb"),
        ]
    }

    #[test]
    fn every_reply_type_parses_as_redis_rs_parses_it() {
        assert_eq!(all(MIXED), mixed());
        let mut theirs = redis::Parser::new();
        let mut input = MIXED;
        let theirs: Vec<Value> = (0..mixed().len())
            .map(|_| theirs.parse_value(&mut input).expect("valid"))
            .collect();
        assert_eq!(theirs, mixed());
    }

    #[test]
    fn a_reply_split_at_any_byte_parses_the_same() {
        for step in 1..MIXED.len() {
            assert_eq!(in_pieces(MIXED, step), mixed(), "pieces of {step}");
        }
    }

    #[test]
    fn errors_keep_their_kind_for_extract_error() {
        let [error] = all(b"-NOSCRIPT No matching script\r\n")
            .try_into()
            .expect("one");
        let e = error.extract_error().expect_err("an error");
        assert_eq!(e.kind(), ErrorKind::Server(ServerErrorKind::NoScript));
        let [error] = all(b"-WRONGPASS invalid password\r\n")
            .try_into()
            .expect("one");
        let Value::ServerError(e) = error else {
            panic!("a server error")
        };
        assert_eq!(e.code(), "WRONGPASS");
    }

    #[test]
    fn partial_input_is_consumed_up_to_the_last_whole_element() {
        let mut parser = Parser::default();
        // Nothing whole yet: a header cut short.
        assert_eq!(parser.parse(b"$5\r").expect("valid"), (0, None));
        // The array header and its first element are taken; the second waits.
        let (used, reply) = parser.parse(b"*2\r\n:1\r\n$3\r\nab").expect("valid");
        assert_eq!((used, reply), (8, None));
        let (used, reply) = parser.parse(b"$3\r\nabc\r\n").expect("valid");
        assert_eq!(used, 9);
        assert_eq!(reply, Some(Value::Array(vec![Value::Int(1), bulk("abc")])));
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        for bad in [
            &b"?what\r\n"[..],
            b":12a\r\n",
            b":\r\n",
            b"$3\r\nabcd\r\n",
            b"*x\r\n",
            b":99999999999999999999\r\n",
        ] {
            let e = Parser::default().parse(bad).expect_err("refused");
            assert_eq!(e.kind(), ErrorKind::Parse, "{bad:?}");
        }
        let deep = b"*1\r\n".repeat(MAX_DEPTH + 1);
        assert!(Parser::default().parse(&deep).is_err());
    }
}
