//! keepalived's quoting of a script line (`alloc_strvec_quoted_escaped`), and the one line it
//! hands to a shell.
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use super::ScriptError;

/// keepalived's second pass over a `script` value: words split on white space; `'…'` and `"…"`
/// group words and are removed; a backslash escape is C's (`\n`, `\t`, `\x41`, `\101`, `\cA`,
/// `\E` …, any other character stands for itself), inside quotes too.
pub fn split(line: &str) -> Result<Vec<OsString>, ScriptError> {
    let fail = |reason| ScriptError::Split {
        line: line.to_owned(),
        reason,
    };
    let s = line.as_bytes();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while s.get(i).is_some_and(|&c| is_space(c)) {
            i += 1;
        }
        if i == s.len() {
            break;
        }
        let mut word = Vec::new();
        let mut quote = None;
        while let Some(&c) = s.get(i) {
            i += 1;
            match (c, quote) {
                (b'\\', _) => {
                    if i == s.len() {
                        return Err(fail("it ends with a backslash"));
                    }
                    word.push(unescape(s, &mut i));
                }
                (c, Some(q)) if c == q => quote = None,
                (_, Some(_)) => word.push(c),
                (b'"' | b'\'', None) => quote = Some(c),
                (c, None) if is_space(c) => break,
                (c, None) => word.push(c),
            }
        }
        if quote.is_some() {
            return Err(fail("a quote is not closed"));
        }
        words.push(OsString::from_vec(word));
    }
    if words.is_empty() {
        return Err(ScriptError::Empty);
    }
    Ok(words)
}

/// keepalived's WHITE_SPACE_STR.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\x0c' | b'\n' | b'\r' | b'\x0b')
}

/// The escape after a backslash, starting at `s[*i]`, which exists.
fn unescape(s: &[u8], i: &mut usize) -> u8 {
    let c = s[*i];
    *i += 1;
    match c {
        b'x' if s.get(*i).is_some_and(u8::is_ascii_hexdigit) => digits(s, i, 16, 2, 0),
        b'0'..=b'7' => digits(s, i, 8, 2, c - b'0'),
        b'c' if *i < s.len() => {
            *i += 1;
            s[*i - 1] & 0x1f
        }
        b'a' => 0x07,
        b'b' => 0x08,
        b'E' => 0x1b,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'v' => 0x0b,
        other => other,
    }
}

/// Up to `max` more digits of `radix` onto `value`, with C's char arithmetic (`\777` wraps).
fn digits(s: &[u8], i: &mut usize, radix: u8, max: usize, mut value: u8) -> u8 {
    for _ in 0..max {
        let Some(d) = s
            .get(*i)
            .and_then(|&d| char::from(d).to_digit(radix.into()))
        else {
            break;
        };
        value = value.wrapping_mul(radix).wrapping_add(d as u8);
        *i += 1;
    }
    value
}

/// `</path…` as one word: keepalived's test for "open this file", which only a shell can do.
pub(super) fn is_redirection(word: &[u8]) -> bool {
    word.first() == Some(&b'<')
        && word[1..].iter().find(|&&c| c != b' ' && c != b'\t') == Some(&b'/')
}

/// keepalived's `cmd_str`: the redirection as written, every other word single-quoted.
pub(super) fn shell_line(argv: &[OsString]) -> OsString {
    let mut line = argv[0].as_bytes().to_vec();
    for word in &argv[1..] {
        line.extend_from_slice(b" '");
        for &c in word.as_bytes() {
            match c {
                b'\'' => line.extend_from_slice(b"'\\''"),
                c => line.push(c),
            }
        }
        line.push(b'\'');
    }
    OsString::from_vec(line)
}
