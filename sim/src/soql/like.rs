//! SOQL LIKE: `%` any run, `_` one character, `\%` and `\_` literal; case-insensitive.

use super::lexer::StrChar;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Any,
    One,
    Char(char),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LikePattern(Vec<Piece>);

impl LikePattern {
    pub(crate) fn new(chars: &[StrChar]) -> Self {
        let pieces = chars.iter().map(|c| match (c.c, c.escaped) {
            ('%', false) => Piece::Any,
            ('_', false) => Piece::One,
            (c, _) => Piece::Char(c),
        });
        let mut out: Vec<Piece> = Vec::new();
        for piece in pieces {
            if piece == Piece::Any && out.last() == Some(&Piece::Any) {
                continue;
            }
            out.push(piece);
        }
        Self(out.into_iter().map(lower_piece).collect())
    }

    /// Iterative wildcard matching with single-star backtracking: linear for one `%`, and never
    /// exponential.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
        let pattern = &self.0;
        let (mut p, mut t) = (0, 0);
        let mut star: Option<(usize, usize)> = None;
        while t < text.len() {
            match pattern.get(p) {
                Some(Piece::One) => {
                    p += 1;
                    t += 1;
                }
                Some(Piece::Char(c)) if *c == text[t] => {
                    p += 1;
                    t += 1;
                }
                Some(Piece::Any) => {
                    star = Some((p, t));
                    p += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        p = sp + 1;
                        t = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        pattern[p..].iter().all(|piece| *piece == Piece::Any)
    }
}

fn lower_piece(piece: Piece) -> Piece {
    match piece {
        Piece::Char(c) => {
            let mut lower = c.to_lowercase();
            match (lower.next(), lower.next()) {
                (Some(l), None) => Piece::Char(l),
                _ => Piece::Char(c),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(s: &str) -> LikePattern {
        let mut chars = Vec::new();
        let mut escaped = false;
        for c in s.chars() {
            if c == '\\' && !escaped {
                escaped = true;
                continue;
            }
            chars.push(StrChar { c, escaped });
            escaped = false;
        }
        LikePattern::new(&chars)
    }

    #[test]
    fn wildcards_and_case() {
        assert!(pattern("acme%").matches("ACME Systems"));
        assert!(pattern("%systems").matches("Acme Systems"));
        assert!(pattern("%me%st%").matches("Acme Systems"));
        assert!(pattern("a_me").matches("Acme"));
        assert!(!pattern("a_me").matches("Acmme"));
        assert!(pattern("%").matches(""));
        assert!(!pattern("x%").matches(""));
        assert!(pattern("müller%").matches("MÜLLER GmbH"));
        assert!(pattern(r"100\%").matches("100%"));
        assert!(!pattern(r"100\%").matches("1000"));
        assert!(pattern(r"a\_b").matches("a_b"));
        assert!(!pattern(r"a\_b").matches("axb"));
    }
}
