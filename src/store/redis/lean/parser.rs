//! A RESP2 and RESP3 reply parser that resumes where the input ran out: a reply split
//! across reads is parsed once, element by element (the finished elements of an
//! unfinished aggregate are kept, never parsed again), and many replies in one read come
//! out one by one. It produces `redis::Value`s as redis-rs's own parser does, so
//! everything above (`FromRedisValue`, `extract_error`) works unchanged.
//!
//! RESP3 (after `HELLO 3`, which the client cache needs) adds the types a session store
//! can meet: `_` null, `#` boolean, `,` double, `(` big number, `=` verbatim string, `!`
//! blob error, `%` map, `~` set, `|` attribute (skipped: the value after it is the
//! reply) and `>` push. A push is out-of-band data (an invalidation), never a reply: it
//! comes out as a `Value::Push` for the connection to route, and only between replies
//! (one nested inside a reply is a protocol error, which drops the connection and with
//! it everything cached: the safe way to fail).

use redis::{ErrorKind, PushKind, RedisError, RedisResult, Value};

/// Aggregates nested deeper than this are refused (redis-rs's limit too).
const MAX_DEPTH: usize = 100;
/// At most this many elements are allocated up front for an aggregate, whatever its
/// header claims (a bogus length must not reserve gigabytes).
const MAX_PREALLOC: usize = 1024;

/// The aggregates of the reply being parsed that are still open.
#[derive(Debug, Default)]
pub(super) struct Parser {
    /// Per open aggregate, outermost first.
    open: Vec<Open>,
}

/// An aggregate whose elements are still arriving.
#[derive(Debug)]
struct Open {
    kind: Kind,
    /// Its elements so far (a map's and an attribute's keys and values alternate).
    items: Vec<Value>,
    /// How many elements are still missing.
    missing: usize,
}

/// The kinds of aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Array,
    Set,
    Map,
    Push,
    /// Metadata about the value that follows it: read and dropped.
    Attribute,
}

/// One element read from the input.
enum Element {
    /// A whole value (a scalar, an empty or null aggregate).
    Value(Value),
    /// The header of an aggregate of this many elements (at least one).
    Open(Kind, usize),
    /// An empty attribute: nothing to keep.
    Skip,
}

impl Parser {
    /// Parses from `input`: the bytes consumed (they are never needed again, even when no
    /// reply is finished yet) and the next whole reply (or push), if the input held its
    /// end.
    ///
    /// # Errors
    /// A protocol error: the stream cannot be trusted any more.
    pub(super) fn parse(&mut self, input: &[u8]) -> RedisResult<(usize, Option<Value>)> {
        let mut at = 0;
        while let Some((used, element)) = element(&input[at..])? {
            at += used;
            let value = match element {
                Element::Value(value) => value,
                Element::Skip => continue,
                Element::Open(kind, len) => {
                    self.open(kind, len)?;
                    continue;
                }
            };
            if matches!(value, Value::Push { .. }) && !self.open.is_empty() {
                return Err(protocol("a push inside a reply"));
            }
            if let Some(reply) = self.attach(value)? {
                return Ok((at, Some(reply)));
            }
        }
        Ok((at, None))
    }

    fn open(&mut self, kind: Kind, len: usize) -> RedisResult<()> {
        if self.open.len() >= MAX_DEPTH {
            return Err(protocol("aggregates nested too deep"));
        }
        if kind == Kind::Push && !self.open.is_empty() {
            return Err(protocol("a push inside a reply"));
        }
        let items = Vec::with_capacity(len.min(MAX_PREALLOC));
        self.open.push(Open {
            kind,
            items,
            missing: len,
        });
        Ok(())
    }

    /// Puts a finished value into the innermost open aggregate, closing every aggregate
    /// it fills; the value itself when it is a whole reply.
    fn attach(&mut self, mut value: Value) -> RedisResult<Option<Value>> {
        loop {
            let Some(top) = self.open.last_mut() else {
                return Ok(Some(value));
            };
            top.items.push(value);
            top.missing -= 1;
            if top.missing > 0 {
                return Ok(None);
            }
            let Some(done) = self.open.pop() else {
                return Ok(None);
            };
            match close(done.kind, done.items)? {
                Some(closed) => value = closed,
                // An attribute is not an element: the value after it is.
                None => return Ok(None),
            }
        }
    }
}

/// The value of a finished aggregate; `None` for an attribute.
fn close(kind: Kind, items: Vec<Value>) -> RedisResult<Option<Value>> {
    Ok(Some(match kind {
        Kind::Array => Value::Array(items),
        Kind::Set => Value::Set(items),
        Kind::Map => Value::Map(pairs(items)),
        Kind::Push => push(items)?,
        Kind::Attribute => return Ok(None),
    }))
}

/// Alternating keys and values as pairs.
fn pairs(items: Vec<Value>) -> Vec<(Value, Value)> {
    let mut pairs = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        pairs.push((k, v));
    }
    pairs
}

/// A push as redis-rs builds it: the kind from its first element, the rest as data.
fn push(items: Vec<Value>) -> RedisResult<Value> {
    let mut items = items.into_iter();
    let kind = match items.next() {
        Some(Value::BulkString(kind)) => {
            String::from_utf8(kind).map_err(|_| protocol("a push kind is not UTF-8"))?
        }
        Some(Value::SimpleString(kind)) => kind,
        _ => return Err(protocol("a push without a kind")),
    };
    let kind = match kind.as_str() {
        "invalidate" => PushKind::Invalidate,
        "message" => PushKind::Message,
        "pmessage" => PushKind::PMessage,
        "smessage" => PushKind::SMessage,
        _ => PushKind::Other(kind),
    };
    Ok(Value::Push {
        kind,
        data: items.collect(),
    })
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
        // Rare: redis-rs builds them (a verbatim string's format, a blob error's kind).
        b'=' | b'!' => return by_redis_rs(input, integer(line)?, after),
        b'*' => return aggregate(Kind::Array, integer(line)?, after),
        b'~' => return aggregate(Kind::Set, integer(line)?, after),
        b'>' => return aggregate(Kind::Push, integer(line)?, after),
        b'%' => return aggregate(Kind::Map, pairs_len(line)?, after),
        b'|' => return aggregate(Kind::Attribute, pairs_len(line)?, after),
        b'_' if line.is_empty() => Value::Nil,
        b'#' => match line {
            b"t" => Value::Boolean(true),
            b"f" => Value::Boolean(false),
            _ => return Err(protocol("a boolean is neither t nor f")),
        },
        b',' => Value::Double(double(line)?),
        // A big number is a `BigInt` or digits, as redis-rs's features decide.
        b'(' => redis::parse_redis_value(&input[..after])?,
        _ => return Err(protocol("unknown reply type")),
    };
    Ok(Some((after, Element::Value(value))))
}

/// The header of an aggregate of `len` elements (a null or empty one is whole).
fn aggregate(kind: Kind, len: i64, after: usize) -> RedisResult<Option<(usize, Element)>> {
    let element = match (kind, len) {
        (Kind::Array | Kind::Set, len) if len < 0 => Element::Value(Value::Nil),
        (_, len) if len < 0 => return Err(protocol("a negative length")),
        (Kind::Array, 0) => Element::Value(Value::Array(Vec::new())),
        (Kind::Set, 0) => Element::Value(Value::Set(Vec::new())),
        (Kind::Map, 0) => Element::Value(Value::Map(Vec::new())),
        (Kind::Push, 0) => Element::Value(push(vec![Value::SimpleString(String::new())])?),
        (Kind::Attribute, 0) => Element::Skip,
        (kind, len) => {
            let len = usize::try_from(len).map_err(|_| protocol("aggregate too long"))?;
            Element::Open(kind, len)
        }
    };
    Ok(Some((after, element)))
}

/// Twice the count of a map's or attribute's header (its keys and values).
fn pairs_len(line: &[u8]) -> RedisResult<i64> {
    integer(line)?
        .checked_mul(2)
        .ok_or_else(|| protocol("map too long"))
}

/// A RESP3 double: digits, an exponent, `inf`, `-inf` or `nan`.
fn double(line: &[u8]) -> RedisResult<f64> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| protocol("expected a double"))
}

/// A bulk string of `len` bytes starting at `start`, if the input holds it all.
fn bulk(input: &[u8], len: i64, start: usize) -> RedisResult<Option<(usize, Element)>> {
    if len < 0 {
        return Ok(Some((start, Element::Value(Value::Nil))));
    }
    let Some(end) = payload_end(input, len, start)? else {
        return Ok(None);
    };
    let value = Value::BulkString(input[start..end - 2].to_vec());
    Ok(Some((end, Element::Value(value))))
}

/// A verbatim string or a blob error (length-prefixed like a bulk string), handed whole
/// to redis-rs's parser.
fn by_redis_rs(input: &[u8], len: i64, start: usize) -> RedisResult<Option<(usize, Element)>> {
    if len < 0 {
        return Err(protocol("a negative length"));
    }
    let Some(end) = payload_end(input, len, start)? else {
        return Ok(None);
    };
    let value = redis::parse_redis_value(&input[..end])?;
    Ok(Some((end, Element::Value(value))))
}

/// Where a payload of `len` bytes at `start` ends, its CRLF included, if the input
/// holds it all.
fn payload_end(input: &[u8], len: i64, start: usize) -> RedisResult<Option<usize>> {
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
    Ok(Some(end + 2))
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

    /// Every RESP3 type a session store can meet, pushes between replies included.
    const RESP3: &[u8] = b"_\r\n#t\r\n#f\r\n,1.5\r\n,-inf\r\n,3e2\r\n\
(3492890328409238509324850943850943825024385\r\n=15\r\ntxt:Some string\r\n\
!21\r\nSYNTAX invalid syntax\r\n%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n*2\r\n_\r\n#t\r\n\
~3\r\n:1\r\n:2\r\n+three\r\n\
|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.5\r\n*2\r\n:2039123\r\n|0\r\n:9543892\r\n\
>2\r\n$10\r\ninvalidate\r\n*2\r\n$8\r\nsess:abc\r\n$3\r\nxyz\r\n>2\r\n$10\r\ninvalidate\r\n_\r\n\
%0\r\n~0\r\n~-1\r\n>0\r\n*1\r\n%1\r\n~1\r\n_\r\n|1\r\n+a\r\n+b\r\n:5\r\n";

    fn resp3() -> Vec<Value> {
        let big = redis::parse_redis_value(b"(3492890328409238509324850943850943825024385\r\n")
            .expect("a big number");
        let verbatim = redis::parse_redis_value(b"=15\r\ntxt:Some string\r\n").expect("verbatim");
        let blob_error = redis::parse_redis_value(b"-SYNTAX invalid syntax\r\n").expect("error");
        vec![
            Value::Nil,
            Value::Boolean(true),
            Value::Boolean(false),
            Value::Double(1.5),
            Value::Double(f64::NEG_INFINITY),
            Value::Double(300.0),
            big,
            verbatim,
            blob_error,
            Value::Map(vec![
                (Value::SimpleString("first".into()), Value::Int(1)),
                (
                    bulk("second"),
                    Value::Array(vec![Value::Nil, Value::Boolean(true)]),
                ),
            ]),
            Value::Set(vec![
                Value::Int(1),
                Value::Int(2),
                Value::SimpleString("three".into()),
            ]),
            // The attribute is dropped; an empty one inside the array too.
            Value::Array(vec![Value::Int(2039123), Value::Int(9543892)]),
            Value::Push {
                kind: PushKind::Invalidate,
                data: vec![Value::Array(vec![bulk("sess:abc"), bulk("xyz")])],
            },
            Value::Push {
                kind: PushKind::Invalidate,
                data: vec![Value::Nil],
            },
            Value::Map(vec![]),
            Value::Set(vec![]),
            Value::Nil,
            Value::Push {
                kind: PushKind::Other(String::new()),
                data: vec![],
            },
            Value::Array(vec![Value::Map(vec![(
                Value::Set(vec![Value::Nil]),
                Value::Int(5),
            )])]),
        ]
    }

    #[test]
    fn resp3_types_parse_as_redis_rs_parses_them_but_attributes_are_skipped() {
        assert_eq!(all(RESP3), resp3());
        let mut theirs = redis::Parser::new();
        let mut input = RESP3;
        let theirs: Vec<Value> = (0..resp3().len())
            .map(|_| without_attributes(theirs.parse_value(&mut input).expect("valid")))
            .collect();
        assert_eq!(theirs, resp3());
    }

    /// redis-rs keeps attributes; this parser drops them.
    fn without_attributes(value: Value) -> Value {
        match value {
            Value::Attribute { data, .. } => without_attributes(*data),
            Value::Array(items) => {
                Value::Array(items.into_iter().map(without_attributes).collect())
            }
            Value::Map(pairs) => Value::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| (without_attributes(k), without_attributes(v)))
                    .collect(),
            ),
            other => other,
        }
    }

    #[test]
    fn a_resp3_stream_split_at_any_byte_parses_the_same() {
        for step in 1..RESP3.len() {
            assert_eq!(in_pieces(RESP3, step), resp3(), "pieces of {step}");
        }
        let both: Vec<u8> = [MIXED, RESP3, MIXED].concat();
        let expected: Vec<Value> = [mixed(), resp3(), mixed()].concat();
        for step in [1, 2, 3, 5, 7, 11, 64] {
            assert_eq!(in_pieces(&both, step), expected, "pieces of {step}");
        }
    }

    #[test]
    fn a_double_may_be_nan_or_infinite() {
        let [nan, inf] = all(b",nan\r\n,inf\r\n").try_into().expect("two");
        assert!(matches!(nan, Value::Double(d) if d.is_nan()));
        assert_eq!(inf, Value::Double(f64::INFINITY));
    }

    #[test]
    fn resp3_garbage_is_a_protocol_error() {
        for bad in [
            &b"#x\r\n"[..],
            b",1.2.3\r\n",
            b"_x\r\n",
            b"%-1\r\n",
            b"=-1\r\n",
            b">1\r\n:1\r\n",
            // A push belongs between replies, never inside one.
            b"*2\r\n:1\r\n>1\r\n+invalidate\r\n",
            b"*1\r\n>0\r\n",
        ] {
            let e = Parser::default().parse(bad).expect_err("refused");
            assert_eq!(e.kind(), ErrorKind::Parse, "{bad:?}");
        }
        let deep = b"%1\r\n".repeat(MAX_DEPTH + 1);
        assert!(Parser::default().parse(&deep).is_err());
    }
}
