//! Tokens of SOQL's WHERE-clause world: identifiers, quoted strings with backslash escapes,
//! numbers, and date and datetime literals, which SOQL writes bare (`2024-01-01T00:00:00Z`).

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::error::{MALFORMED_QUERY, SoqlError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One character of a string literal; `escaped` tells `\%` (a literal percent) from `%` (a LIKE
/// wildcard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StrChar {
    pub(crate) c: char,
    pub(crate) escaped: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(Vec<StrChar>),
    Num(f64),
    Date(NaiveDate),
    /// Milliseconds since the epoch, offset applied.
    DateTime(i64),
    Comma,
    Dot,
    LParen,
    RParen,
    Colon,
    Op(CmpOp),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    /// Byte offset in the query, for error positions.
    pub(crate) pos: usize,
    pub(crate) text: String,
}

pub(crate) fn tokenize(soql: &str) -> Result<Vec<Token>, SoqlError> {
    let mut lexer = Lexer { soql, bytes: soql.as_bytes(), pos: 0 };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let start = lexer.pos;
        let tok = lexer.next_tok()?;
        let eof = tok == Tok::Eof;
        let text = if eof { "<EOF>".to_owned() } else { soql[start..lexer.pos].to_owned() };
        tokens.push(Token { tok, pos: start, text });
        if eof {
            return Ok(tokens);
        }
    }
}

struct Lexer<'a> {
    soql: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos + ahead).copied()
    }

    fn skip_whitespace(&mut self) {
        while self.peek(0).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn error(&self, pos: usize, reason: impl AsRef<str>) -> SoqlError {
        SoqlError::at(MALFORMED_QUERY, self.soql, pos, reason)
    }

    fn next_tok(&mut self) -> Result<Tok, SoqlError> {
        let Some(b) = self.peek(0) else {
            return Ok(Tok::Eof);
        };
        let single = |tok| Ok::<_, SoqlError>(tok);
        match b {
            b',' => self.advance(1, single(Tok::Comma)),
            b'.' => self.advance(1, single(Tok::Dot)),
            b'(' => self.advance(1, single(Tok::LParen)),
            b')' => self.advance(1, single(Tok::RParen)),
            b':' => self.advance(1, single(Tok::Colon)),
            b'=' => self.advance(1, single(Tok::Op(CmpOp::Eq))),
            b'!' if self.peek(1) == Some(b'=') => self.advance(2, single(Tok::Op(CmpOp::Ne))),
            b'<' if self.peek(1) == Some(b'>') => self.advance(2, single(Tok::Op(CmpOp::Ne))),
            b'<' if self.peek(1) == Some(b'=') => self.advance(2, single(Tok::Op(CmpOp::Le))),
            b'<' => self.advance(1, single(Tok::Op(CmpOp::Lt))),
            b'>' if self.peek(1) == Some(b'=') => self.advance(2, single(Tok::Op(CmpOp::Ge))),
            b'>' => self.advance(1, single(Tok::Op(CmpOp::Gt))),
            b'\'' => self.string(),
            b'0'..=b'9' => self.number_or_date(),
            b'-' | b'+' if self.peek(1).is_some_and(|b| b.is_ascii_digit()) => self.number_or_date(),
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let start = self.pos;
                while self.peek(0).is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_') {
                    self.pos += 1;
                }
                Ok(Tok::Ident(self.soql[start..self.pos].to_owned()))
            }
            _ => {
                let c = self.soql[self.pos..].chars().next().unwrap_or('?');
                Err(self.error(self.pos, format!("unexpected token: '{c}'")))
            }
        }
    }

    fn advance(&mut self, n: usize, tok: Result<Tok, SoqlError>) -> Result<Tok, SoqlError> {
        self.pos += n;
        tok
    }

    fn string(&mut self) -> Result<Tok, SoqlError> {
        let start = self.pos;
        self.pos += 1;
        let mut out = Vec::new();
        let mut chars = self.soql[self.pos..].char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => {
                    self.pos += i + 1;
                    return Ok(Tok::Str(out));
                }
                '\\' => {
                    let Some((_, e)) = chars.next() else { break };
                    let c = match e {
                        'n' | 'N' => '\n',
                        'r' | 'R' => '\r',
                        't' | 'T' => '\t',
                        'b' | 'B' => '\u{8}',
                        'f' | 'F' => '\u{c}',
                        '"' | '\'' | '\\' | '_' | '%' => e,
                        'u' => {
                            let hex: String = chars.by_ref().take(4).map(|(_, h)| h).collect();
                            u32::from_str_radix(&hex, 16)
                                .ok()
                                .filter(|_| hex.len() == 4)
                                .and_then(char::from_u32)
                                .ok_or_else(|| self.bad_escape(start, &format!("\\u{hex}")))?
                        }
                        other => return Err(self.bad_escape(start, &format!("\\{other}"))),
                    };
                    out.push(StrChar { c, escaped: true });
                }
                c => out.push(StrChar { c, escaped: false }),
            }
        }
        Err(self.error(start, "unterminated string literal"))
    }

    fn bad_escape(&self, start: usize, sequence: &str) -> SoqlError {
        self.error(start, format!("Invalid string literal. Illegal character sequence '{sequence}' in string literal."))
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek(0).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    fn number_or_date(&mut self) -> Result<Tok, SoqlError> {
        let start = self.pos;
        let signed = matches!(self.peek(0), Some(b'-' | b'+'));
        if signed {
            self.pos += 1;
        }
        let int_digits = self.digits();
        if !signed && int_digits == 4 && self.peek(0) == Some(b'-') {
            return self.date_or_datetime(start);
        }
        if self.peek(0) == Some(b'.') && self.peek(1).is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
            self.digits();
        }
        if self.peek(0).is_some_and(|b| b.is_ascii_alphabetic() || b == b'_') {
            let word = self.rest_of_word(start);
            return Err(self.error(start, format!("unexpected token: '{word}'")));
        }
        let text = &self.soql[start..self.pos];
        text.parse::<f64>().map(Tok::Num).map_err(|_| self.error(start, format!("unexpected token: '{text}'")))
    }

    fn rest_of_word(&mut self, start: usize) -> String {
        while self.peek(0).is_some_and(|b| !b.is_ascii_whitespace() && !b",()".contains(&b)) {
            self.pos += 1;
        }
        self.soql[start..self.pos].to_owned()
    }

    /// `YYYY-MM-DD`, or `YYYY-MM-DDThh:mm:ss[.fff](Z|±hh:mm)`: SOQL requires the zone.
    fn date_or_datetime(&mut self, start: usize) -> Result<Tok, SoqlError> {
        let word = self.rest_of_word(start);
        let invalid = || self.error(start, format!("unexpected token: '{word}'"));
        if word.len() == 10 {
            return NaiveDate::parse_from_str(&word, "%Y-%m-%d").map(Tok::Date).map_err(|_| invalid());
        }
        let Some((date, time)) = word.split_once(['T', 't']) else {
            return Err(invalid());
        };
        let date = NaiveDate::parse_from_str(date, "%Y-%m-%d").map_err(|_| invalid())?;
        let (clock, offset_secs) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
            (clock, 0)
        } else {
            let split = time.rfind(['+', '-']).ok_or_else(invalid)?;
            let (clock, zone) = time.split_at(split);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':').ok_or_else(invalid)?;
            let valid = |s: &str, max| s.len() == 2 && s.parse::<i64>().is_ok_and(|v| v <= max);
            if !valid(h, 23) || !valid(m, 59) {
                return Err(invalid());
            }
            let secs = h.parse::<i64>().unwrap_or(0) * 3600 + m.parse::<i64>().unwrap_or(0) * 60;
            (clock, sign * secs)
        };
        if clock.len() < 8
            || !clock.as_bytes()[..8]
                .iter()
                .enumerate()
                .all(|(i, b)| if i == 2 || i == 5 { *b == b':' } else { b.is_ascii_digit() })
        {
            return Err(invalid());
        }
        let time = NaiveTime::parse_from_str(clock, "%H:%M:%S%.f").map_err(|_| invalid())?;
        let utc = NaiveDateTime::new(date, time).and_utc().timestamp_millis() - offset_secs * 1000;
        Ok(Tok::DateTime(utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).map(|t| t.into_iter().map(|t| t.tok).collect()).unwrap_or_default()
    }

    fn datetime(s: &str) -> i64 {
        match toks(s).first() {
            Some(Tok::DateTime(ms)) => *ms,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn datetime_forms_agree_on_the_instant() {
        let base = datetime("2024-01-01T00:00:00Z");
        assert_eq!(base, 1_704_067_200_000);
        assert_eq!(datetime("2024-01-01T00:00:00.000Z"), base);
        assert_eq!(datetime("2024-01-01T00:00:00.250Z"), base + 250);
        assert_eq!(datetime("2024-01-01T01:00:00+01:00"), base);
        assert_eq!(datetime("2023-12-31T19:30:00-04:30"), base);
    }

    #[test]
    fn dates_numbers_operators() {
        assert_eq!(
            toks("2024-02-29 -1.5 42 != <> <= >= < > ="),
            vec![
                Tok::Date(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap_or_default()),
                Tok::Num(-1.5),
                Tok::Num(42.0),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Ne),
                Tok::Op(CmpOp::Le),
                Tok::Op(CmpOp::Ge),
                Tok::Op(CmpOp::Lt),
                Tok::Op(CmpOp::Gt),
                Tok::Op(CmpOp::Eq),
                Tok::Eof,
            ]
        );
    }

    #[test]
    fn string_escapes() {
        let Some(Tok::Str(chars)) = toks(r"'O\'Brien\n\\ \% %'").into_iter().next() else { panic!("not a string") };
        let text: String = chars.iter().map(|c| c.c).collect();
        assert_eq!(text, "O'Brien\n\\ % %");
        assert!(chars[chars.len() - 3].escaped);
        assert!(!chars[chars.len() - 1].escaped);
        let Some(Tok::Str(chars)) = toks(r"'\u00e9'").into_iter().next() else { panic!() };
        assert_eq!(chars[0].c, 'é');
    }

    #[test]
    fn malformed_literals() {
        for bad in [
            "'open",
            r"'bad \q escape'",
            "2024-13-01",
            "2024-01-01T00:00:00",
            "2024-01-01T25:00:00Z",
            "2024-01-01T00:00:00+0100",
            "12abc",
            "#",
        ] {
            let err = tokenize(bad).err();
            assert_eq!(err.map(|e| e.error_code), Some(MALFORMED_QUERY.to_owned()), "{bad}");
        }
    }
}
