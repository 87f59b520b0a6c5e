//! Recursive descent over the token list. Constructs Bulk API 2.0 refuses are rejected here with
//! the API's error; valid SOQL the simulator does not implement is refused as a simulator limit.

use super::Query;
use super::ast::{Expr, Literal, OrderItem, Path};
use super::error::{MALFORMED_QUERY, SoqlError};
use super::lexer::{Tok, Token, tokenize};

const AGGREGATES: &[&str] = &["COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"];
/// Words that end the FROM clause, so an identifier after the object is an alias only if it is
/// none of these.
const CLAUSE_WORDS: &[&str] =
    &["WHERE", "WITH", "GROUP", "HAVING", "ORDER", "LIMIT", "OFFSET", "FOR", "UPDATE", "USING"];
const DATE_LITERALS: &[&str] = &[
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_QUARTER",
    "LAST_QUARTER",
    "NEXT_QUARTER",
    "THIS_YEAR",
    "LAST_YEAR",
    "NEXT_YEAR",
    "THIS_FISCAL_QUARTER",
    "LAST_FISCAL_QUARTER",
    "NEXT_FISCAL_QUARTER",
    "THIS_FISCAL_YEAR",
    "LAST_FISCAL_YEAR",
    "NEXT_FISCAL_YEAR",
];

pub(crate) fn parse(soql: &str) -> Result<Query, SoqlError> {
    let tokens = tokenize(soql)?;
    Parser { soql, tokens, at: 0 }.query()
}

struct Parser<'a> {
    soql: &'a str,
    tokens: Vec<Token>,
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        &self.tokens[(self.at + ahead).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let token = self.peek().clone();
        if token.tok != Tok::Eof {
            self.at += 1;
        }
        token
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Ident(word) if word.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let found = self.is_kw(kw);
        if found {
            self.at += 1;
        }
        found
    }

    fn unexpected(&self) -> SoqlError {
        let token = self.peek();
        SoqlError::unexpected(self.soql, token.pos, &token.text)
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) { Ok(()) } else { Err(self.unexpected()) }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), SoqlError> {
        if &self.peek().tok == tok {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn query(mut self) -> Result<Query, SoqlError> {
        self.expect_kw("SELECT")?;
        let mut select = Vec::new();
        loop {
            select.push(self.select_item()?);
            if self.peek().tok != Tok::Comma {
                break;
            }
            self.at += 1;
        }
        self.expect_kw("FROM")?;
        let object_token = self.bump();
        let Tok::Ident(object) = object_token.tok else {
            return Err(SoqlError::unexpected(self.soql, object_token.pos, &object_token.text));
        };
        let alias = match &self.peek().tok {
            Tok::Ident(word) if !CLAUSE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) => {
                let alias = word.clone();
                self.at += 1;
                Some(alias)
            }
            _ => None,
        };
        if self.is_kw("USING") {
            return Err(SoqlError::simulator_limit("USING SCOPE"));
        }
        let filter = if self.eat_kw("WHERE") { Some(self.expr()?) } else { None };
        if self.is_kw("WITH") {
            return Err(SoqlError::simulator_limit("WITH clauses"));
        }
        if self.is_kw("GROUP") {
            return Err(SoqlError::not_in_bulk("GROUP BY"));
        }
        if self.is_kw("HAVING") {
            return Err(SoqlError::not_in_bulk("HAVING"));
        }
        let mut order = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                order.push(self.order_item()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.at += 1;
            }
        }
        let mut limit = None;
        for _ in 0..2 {
            if self.is_kw("OFFSET") {
                return Err(SoqlError::not_in_bulk("OFFSET"));
            }
            if limit.is_none() && self.eat_kw("LIMIT") {
                limit = Some(self.limit()?);
            }
        }
        if self.is_kw("FOR") || self.is_kw("UPDATE") {
            return Err(SoqlError::simulator_limit("FOR and UPDATE clauses"));
        }
        if self.peek().tok != Tok::Eof {
            return Err(self.unexpected());
        }
        Ok(Query {
            soql: self.soql.to_owned(),
            object,
            object_pos: object_token.pos,
            alias,
            select,
            filter,
            order,
            limit,
        })
    }

    fn select_item(&mut self) -> Result<Path, SoqlError> {
        match (&self.peek().tok, self.peek_at(1)) {
            (Tok::LParen, Tok::Ident(word)) if word.eq_ignore_ascii_case("SELECT") => {
                Err(SoqlError::not_in_bulk("Aggregate Relationships"))
            }
            (Tok::Ident(word), _) if word.eq_ignore_ascii_case("TYPEOF") => Err(SoqlError::not_in_bulk("TYPEOF")),
            (Tok::Ident(word), _) if word.eq_ignore_ascii_case("FROM") => Err(self.unexpected()),
            (Tok::Ident(function), Tok::LParen) => {
                let upper = function.to_ascii_uppercase();
                if AGGREGATES.contains(&upper.as_str()) {
                    Err(SoqlError::not_in_bulk("Aggregate Queries"))
                } else if upper == "FIELDS" {
                    Err(SoqlError::not_in_bulk("FIELDS()"))
                } else {
                    Err(SoqlError::simulator_limit(&format!("{function}() in SELECT")))
                }
            }
            _ => self.path(),
        }
    }

    fn path(&mut self) -> Result<Path, SoqlError> {
        let pos = self.peek().pos;
        let mut parts = Vec::new();
        loop {
            match self.bump().tok {
                Tok::Ident(part) => parts.push(part),
                _ => {
                    self.at -= 1;
                    return Err(self.unexpected());
                }
            }
            if self.peek().tok != Tok::Dot {
                return Ok(Path { parts, pos });
            }
            self.at += 1;
        }
    }

    fn limit(&mut self) -> Result<u64, SoqlError> {
        match self.peek().tok {
            Tok::Num(n) if n >= 0.0 && n.fract() == 0.0 && !self.peek().text.contains('.') => {
                self.at += 1;
                Ok(n as u64)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn order_item(&mut self) -> Result<OrderItem, SoqlError> {
        let field = self.path()?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        let nulls_last = if self.eat_kw("NULLS") {
            if self.eat_kw("LAST") {
                true
            } else {
                self.expect_kw("FIRST")?;
                false
            }
        } else {
            descending
        };
        Ok(OrderItem { field, descending, nulls_last })
    }

    /// SOQL does not rank AND over OR: mixing them needs parentheses.
    fn expr(&mut self) -> Result<Expr, SoqlError> {
        let first = self.unary()?;
        let connective = if self.is_kw("AND") {
            "AND"
        } else if self.is_kw("OR") {
            "OR"
        } else {
            return Ok(first);
        };
        let other = if connective == "AND" { "OR" } else { "AND" };
        let mut terms = vec![first];
        while self.eat_kw(connective) {
            terms.push(self.unary()?);
        }
        if self.is_kw(other) {
            return Err(self.unexpected());
        }
        Ok(if connective == "AND" { Expr::And(terms) } else { Expr::Or(terms) })
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek().tok == Tok::LParen {
            self.at += 1;
            let inner = self.expr()?;
            self.expect(&Tok::RParen)?;
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, SoqlError> {
        if let (Tok::Ident(function), Tok::LParen) = (&self.peek().tok, self.peek_at(1)) {
            return Err(SoqlError::simulator_limit(&format!("{function}() in WHERE")));
        }
        let field = self.path()?;
        if let Tok::Op(op) = self.peek().tok {
            self.at += 1;
            let value_pos = self.peek().pos;
            let value = self.literal()?;
            return Ok(Expr::Cmp { field, op, value, value_pos });
        }
        if self.eat_kw("LIKE") {
            let token = self.bump();
            return match token.tok {
                Tok::Str(pattern) => Ok(Expr::Like { field, pattern }),
                _ => Err(SoqlError::unexpected(self.soql, token.pos, &token.text)),
            };
        }
        if self.is_kw("INCLUDES") || self.is_kw("EXCLUDES") {
            return Err(SoqlError::simulator_limit("INCLUDES and EXCLUDES"));
        }
        let negated = self.eat_kw("NOT");
        if !self.eat_kw("IN") {
            return Err(self.unexpected());
        }
        self.expect(&Tok::LParen)?;
        if self.is_kw("SELECT") {
            return Err(SoqlError::simulator_limit("semi-join subqueries"));
        }
        let value_pos = self.peek().pos;
        let mut values = vec![self.literal()?];
        while self.peek().tok == Tok::Comma {
            self.at += 1;
            values.push(self.literal()?);
        }
        self.expect(&Tok::RParen)?;
        Ok(Expr::In { field, negated, values, value_pos })
    }

    fn literal(&mut self) -> Result<Literal, SoqlError> {
        let token = self.bump();
        Ok(match token.tok {
            Tok::Str(chars) => Literal::Str(chars),
            Tok::Num(n) => Literal::Num(n),
            Tok::Date(d) => Literal::Date(d),
            Tok::DateTime(ms) => Literal::DateTime(ms),
            Tok::Ident(word) => match word.to_ascii_uppercase().as_str() {
                "NULL" => Literal::Null,
                "TRUE" => Literal::Bool(true),
                "FALSE" => Literal::Bool(false),
                upper if DATE_LITERALS.contains(&upper) || self.peek().tok == Tok::Colon => {
                    return Err(SoqlError::simulator_limit(&format!("date literals ({word})")));
                }
                _ => return Err(SoqlError::unexpected(self.soql, token.pos, &token.text)),
            },
            _ => {
                return Err(SoqlError::at(
                    MALFORMED_QUERY,
                    self.soql,
                    token.pos,
                    format!("unexpected token: '{}'", token.text),
                ));
            }
        })
    }
}
