//! The parser: a template (text with `{...}` actions) into [`Node`]s, with
//! the errors client-go's `jsonpath.Parse` reports, word for word.

use super::{Node, Param, ParseError};

/// Scans `input` one character at a time, remembering where the pending
/// token starts (as client-go's parser does).
struct Parser<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    width: usize,
}

/// Parses a whole template: text outside braces, one list per action.
pub(super) fn template(input: &str) -> Result<Vec<Node>, ParseError> {
    let mut p = Parser {
        input,
        pos: 0,
        start: 0,
        width: 0,
    };
    let mut root = Vec::new();
    p.text(&mut root)?;
    Ok(root)
}

/// Parses `text` as one action (`{text}`) and returns the nodes inside it.
fn action(text: &str) -> Result<Vec<Node>, ParseError> {
    let mut root = template(&format!("{{{text}}}"))?;
    match root.pop() {
        Some(Node::List(nodes)) if root.is_empty() => Ok(nodes),
        _ => Ok(Vec::new()),
    }
}

fn is_terminator(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => matches!(
            c,
            ' ' | '\t' | '\r' | '\n' | '.' | ',' | '[' | ']' | '$' | '@' | '{' | '}'
        ),
    }
}

fn is_alphanumeric(c: char) -> bool {
    c == '_' || c.is_alphabetic() || c.is_numeric()
}

/// Go's `%#U`: `U+0023 '#'`, without the quoted character when it does not print.
fn go_unicode(c: char) -> String {
    if c.is_control() {
        format!("U+{:04X}", u32::from(c))
    } else {
        format!("U+{:04X} '{c}'", u32::from(c))
    }
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.input[self.pos..]
    }

    fn next(&mut self) -> Option<char> {
        let c = self.rest().chars().next();
        self.width = c.map_or(0, char::len_utf8);
        self.pos += self.width;
        c
    }

    fn backup(&mut self) {
        self.pos -= self.width;
    }

    fn peek(&mut self) -> Option<char> {
        let c = self.next();
        self.backup();
        c
    }

    fn consume(&mut self) -> String {
        let text = self.input[self.start..self.pos].to_string();
        self.start = self.pos;
        text
    }

    /// The byte before the character just read (client-go's escape check).
    fn escaped(&self) -> bool {
        self.pos >= 2 && self.input.as_bytes()[self.pos - 2] == b'\\'
    }

    fn text(&mut self, root: &mut Vec<Node>) -> Result<(), ParseError> {
        loop {
            if self.rest().starts_with('{') {
                if self.pos > self.start {
                    root.push(Node::Text(self.consume()));
                }
                self.pos += 1;
                self.consume();
                let mut list = Vec::new();
                let result = self.inside(&mut list);
                root.push(Node::List(list));
                result?;
                return self.text(root);
            }
            if self.next().is_none() {
                break;
            }
        }
        if self.pos > self.start {
            root.push(Node::Text(self.consume()));
        }
        Ok(())
    }

    /// Inside an action, until its closing brace.
    fn inside(&mut self, cur: &mut Vec<Node>) -> Result<(), ParseError> {
        loop {
            let rest = self.rest();
            if rest.starts_with('}') {
                self.pos += 1;
                self.consume();
                return Ok(());
            }
            if rest.starts_with("[?(") {
                self.filter(cur)?;
                continue;
            }
            if rest.starts_with("..") {
                self.recursive(cur)?;
                continue;
            }
            match self.next() {
                None | Some('\r' | '\n') => return Err(ParseError::UnclosedAction),
                Some(' ' | '@' | '$') => {
                    self.consume();
                }
                Some('[') => self.array(cur)?,
                Some(q @ ('"' | '\'')) => self.quote(cur, q)?,
                Some('.') => self.field(cur),
                Some(c) if c == '+' || c == '-' || c.is_ascii_digit() => {
                    self.backup();
                    self.number(cur)?;
                }
                Some(c) if is_alphanumeric(c) => {
                    self.backup();
                    self.identifier(cur);
                }
                Some(c) => return Err(ParseError::UnrecognizedCharacter(go_unicode(c))),
            }
        }
    }

    fn identifier(&mut self, cur: &mut Vec<Node>) {
        loop {
            let c = self.next();
            if is_terminator(c) {
                self.backup();
                break;
            }
        }
        let value = self.consume();
        cur.push(match value.as_str() {
            "true" => Node::Bool(true),
            "false" => Node::Bool(false),
            _ => Node::Identifier(value),
        });
    }

    fn recursive(&mut self, cur: &mut Vec<Node>) -> Result<(), ParseError> {
        if matches!(cur.last(), Some(Node::Recursive)) {
            return Err(ParseError::MultipleRecursive);
        }
        self.pos += 2;
        self.consume();
        cur.push(Node::Recursive);
        if self.peek().is_some_and(is_alphanumeric) {
            self.field(cur);
        }
        Ok(())
    }

    fn number(&mut self, cur: &mut Vec<Node>) -> Result<(), ParseError> {
        if matches!(self.peek(), Some('+' | '-')) {
            self.next();
        }
        loop {
            match self.next() {
                Some(c) if c == '.' || c.is_ascii_digit() => {}
                _ => {
                    self.backup();
                    break;
                }
            }
        }
        let value = self.consume();
        if let Ok(i) = value.parse::<i64>() {
            cur.push(Node::Int(i));
        } else if let Some(f) = parse_go_float(&value) {
            cur.push(Node::Float(f));
        } else {
            return Err(ParseError::Number(value));
        }
        Ok(())
    }

    fn array(&mut self, cur: &mut Vec<Node>) -> Result<(), ParseError> {
        loop {
            match self.next() {
                None | Some('\n') => return Err(ParseError::UnterminatedArray),
                Some(']') => break,
                Some(_) => {}
            }
        }
        let raw = self.consume();
        let mut text = &raw[1..raw.len() - 1];
        if text == "*" {
            text = ":";
        }
        let parts: Vec<&str> = text.split(',').collect();
        if parts.len() > 1 {
            let mut union = Vec::new();
            for part in parts {
                union.push(action(&format!("[{}]", part.trim_matches(' ')))?);
            }
            cur.push(Node::Union(union));
            return Ok(());
        }
        if let Some(key) = dict_key(text) {
            cur.extend(action(&format!(".{key}"))?);
            return Ok(());
        }
        cur.push(Node::Array(slice_params(text)?));
        Ok(())
    }

    fn filter(&mut self, cur: &mut Vec<Node>) -> Result<(), ParseError> {
        self.pos += 3;
        self.consume();
        let (mut begin, mut end, mut pair) = (false, false, '"');
        loop {
            match self.next() {
                None | Some('\n') => return Err(ParseError::UnterminatedFilter),
                Some(q @ ('"' | '\'')) => {
                    if !begin {
                        begin = true;
                        pair = q;
                    } else if !self.escaped() && q == pair {
                        end = true;
                    }
                }
                Some(')') if begin == end => break,
                Some(_) => {}
            }
        }
        if self.next() != Some(']') {
            return Err(ParseError::UnclosedFilter);
        }
        let raw = self.consume();
        let text = &raw[..raw.len() - 2];
        match split_comparison(text) {
            None => cur.push(Node::Filter {
                left: action(text)?,
                right: Vec::new(),
                op: "exists".to_string(),
            }),
            Some((left, op, right)) => cur.push(Node::Filter {
                left: action(left)?,
                right: action(right)?,
                op: op.to_string(),
            }),
        }
        Ok(())
    }

    fn quote(&mut self, cur: &mut Vec<Node>, end: char) -> Result<(), ParseError> {
        loop {
            match self.next() {
                None | Some('\n') => return Err(ParseError::UnterminatedQuote),
                Some(c) if c == end && !self.escaped() => break,
                Some(_) => {}
            }
        }
        let value = self.consume();
        match unquote(&value) {
            Some(s) => cur.push(Node::Text(s)),
            None => return Err(ParseError::Unquote(value)),
        }
        Ok(())
    }

    fn field(&mut self, cur: &mut Vec<Node>) {
        self.consume();
        loop {
            let c = self.next();
            if c == Some('\\') {
                self.next();
            } else if is_terminator(c) {
                self.backup();
                break;
            }
        }
        let value = self.consume();
        cur.push(if value == "*" {
            Node::Wildcard
        } else {
            Node::Field(value.replace('\\', ""))
        });
    }
}

/// `'key'` (client-go's `^'([^']*)'$`).
fn dict_key(text: &str) -> Option<&str> {
    let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
    (!inner.contains('\'')).then_some(inner)
}

/// One part of a slice: `-?\d*`.
fn is_index(s: &str) -> bool {
    s.strip_prefix('-')
        .unwrap_or(s)
        .bytes()
        .all(|b| b.is_ascii_digit())
}

/// `start:end:step` (client-go's `^(-?\d*)(:-?\d*)?(:-?\d*)?$`), with an
/// omitted end meaning "start + 1" (one element) when there is no colon.
fn slice_params(text: &str) -> Result<[Param; 3], ParseError> {
    let parts: Vec<&str> = text.splitn(3, ':').collect();
    if !parts.iter().all(|p| is_index(p)) {
        return Err(ParseError::InvalidIndex(text.to_string()));
    }
    let number = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| ParseError::IndexNotNumber(s.to_string()))
    };
    let mut params = [Param::default(); 3];
    match parts.first() {
        Some(s) if !s.is_empty() => params[0] = Param::known(number(s)?),
        _ => {}
    }
    match parts.get(1) {
        None => {
            params[1] = Param {
                known: true,
                value: params[0].value + 1,
                derived: true,
            }
        }
        Some(s) if !s.is_empty() => params[1] = Param::known(number(s)?),
        Some(_) => {}
    }
    if let Some(s) = parts.get(2).filter(|s| !s.is_empty()) {
        params[2] = Param::known(number(s)?);
    }
    Ok(params)
}

/// `left op right` (client-go's `^([^!<>=]+)([!<>=]+)(.+?)$`): the operator
/// is the longest run of `!<>=` after the left side that leaves a right side.
fn split_comparison(text: &str) -> Option<(&str, &str, &str)> {
    let is_op = |c: char| matches!(c, '!' | '<' | '>' | '=');
    let op_start = text.find(is_op)?;
    if op_start == 0 {
        return None;
    }
    let after = &text[op_start..];
    let op_len = match after.find(|c| !is_op(c)) {
        Some(n) => n,
        // Only operator characters: the last one is the right side.
        None if after.len() >= 2 => after.len() - 1,
        None => return None,
    };
    let right = &after[op_len..];
    if right.contains('\n') {
        return None;
    }
    Some((&text[..op_start], &after[..op_len], right))
}

/// Go's `strconv.ParseFloat` for what the number scanner accepts (digits,
/// dots and a leading sign).
fn parse_go_float(s: &str) -> Option<f64> {
    let digits = s.trim_start_matches(['+', '-']);
    if digits.is_empty() || !digits.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<f64>().ok()
}

/// client-go's `UnquoteExtend`: a Go string literal in double or single quotes.
fn unquote(s: &str) -> Option<String> {
    let quote = s.chars().next()?;
    if s.len() < 2 || !s.ends_with(quote) || !matches!(quote, '"' | '\'') {
        return None;
    }
    let inner = &s[1..s.len() - 1];
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c == quote {
            return None;
        }
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = match chars.next()? {
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{b}',
            '\\' => '\\',
            q @ ('\'' | '"') if q == quote => q,
            'x' => hex_char(&mut chars, 2)?,
            'u' => hex_char(&mut chars, 4)?,
            'U' => hex_char(&mut chars, 8)?,
            d @ '0'..='7' => {
                let mut v = d.to_digit(8)?;
                for _ in 0..2 {
                    v = v * 8 + chars.next()?.to_digit(8)?;
                }
                char::from_u32(v).filter(|_| v <= 255)?
            }
            _ => return None,
        };
        out.push(escaped);
    }
    Some(out)
}

fn hex_char(chars: &mut impl Iterator<Item = char>, n: usize) -> Option<char> {
    let mut v = 0u32;
    for _ in 0..n {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    char::from_u32(v)
}
