//! keepalived.conf text to statements: comments, quotes, braces, line continuations and `include`
//! expanded in place, every statement tagged with the file and line it came from.
use std::{
    fs::{self, File},
    io::{self, Read},
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    rc::Rc,
};

use super::{Diags, Loc};

// Bounds on what one configuration may make the parser do, so that a broken or hostile file
// (`a {` a hundred thousand times, an include of /dev/zero) is an error and not a stack overflow
// or an exhausted memory.

/// Blocks inside blocks: keepalived's grammar goes 4 deep at most (LVS: virtual_server,
/// real_server, a checker, its url); its VRRP blocks 2.
const MAX_DEPTH: usize = 16;
/// Files including files: distributions use one level (conf.d/*.conf).
const MAX_INCLUDE_DEPTH: usize = 16;
/// One file: the largest real configurations, with hundreds of LVS real servers, are a few
/// hundred KiB; 4 MiB is ten times that.
const MAX_FILE_BYTES: u64 = 4 << 20;
/// All files together, so that many includes of large files cannot add up without bound.
const MAX_TOTAL_BYTES: u64 = 16 << 20;
/// An include pattern: PATH_MAX; the glob matcher's recursion grows with the pattern's `*`s.
const MAX_PATTERN_BYTES: usize = 4096;
/// `{a,b}` alternatives of one include pattern, which multiply with each brace group.
const MAX_ALTERNATIVES: usize = 1024;

/// The text of `path`, refused past [`MAX_FILE_BYTES`] (without reading further).
pub fn read_limited(path: &Path) -> io::Result<String> {
    let mut text = String::new();
    File::open(path)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::new(io::ErrorKind::FileTooLarge, too_large()));
    }
    Ok(text)
}

fn too_large() -> String {
    format!(
        "larger than {} MiB, the most read here: a configuration is text of some KiB; check \
         that the path names a configuration file",
        MAX_FILE_BYTES >> 20
    )
}

/// One keyword line, with the block that follows it (on the same or a later line), if any.
#[derive(Debug)]
pub struct Stmt {
    pub loc: Loc,
    /// The keyword and its values, quotes removed (`"a b"` is one word).
    pub words: Vec<String>,
    pub block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub fn keyword(&self) -> &str {
        &self.words[0]
    }

    pub fn args(&self) -> &[String] {
        &self.words[1..]
    }
}

/// The statements of `text`, read as the file `file`.
pub fn read(file: &Path, text: &str, diags: &mut Diags) -> Vec<Stmt> {
    let mut lexer = Lexer {
        diags,
        open: vec![canonical(file)],
        tokens: Vec::new(),
        lines: 0,
        bytes: 0,
    };
    lexer.file(Rc::from(file), text);
    let tokens = std::mem::take(&mut lexer.tokens);
    build(tokens, lexer.diags)
}

enum Tok {
    Word(String),
    Open,
    Close,
}

struct Token {
    tok: Tok,
    loc: Loc,
    /// Numbers logical lines across all files: words on one line make one statement.
    line: usize,
}

struct Lexer<'d> {
    diags: &'d mut Diags,
    /// The files being read, outermost first, to refuse include loops.
    open: Vec<PathBuf>,
    tokens: Vec<Token>,
    lines: usize,
    /// Read so far, all files together.
    bytes: u64,
}

impl Lexer<'_> {
    fn file(&mut self, file: Rc<Path>, text: &str) {
        self.bytes += text.len() as u64;
        if text.len() as u64 > MAX_FILE_BYTES {
            self.diags.error(&Loc { file, line: 0 }, too_large());
            return;
        }
        let mut physical = text.lines().enumerate();
        while let Some((n, raw)) = physical.next() {
            let loc = Loc {
                file: file.clone(),
                line: n + 1,
            };
            let mut line = decomment(raw);
            // A trailing backslash continues the line, as in keepalived.
            while line.ends_with('\\') {
                line.pop();
                match physical.next() {
                    Some((_, next)) => line.push_str(&decomment(next)),
                    None => break,
                }
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            if let Some((strict, pattern)) = include_directive(line) {
                self.include(&loc, strict, pattern);
                continue;
            }
            if line.starts_with('@') {
                self.diags.error(
                    &loc,
                    "conditional configuration (@NAME …) is not supported: keep the lines for this \
                     host and remove the others",
                );
                continue;
            }
            if line.starts_with('$') {
                self.diags.error(
                    &loc,
                    "parameter definitions ($NAME=…) and substitutions are not supported: write \
                     the values out",
                );
                continue;
            }
            self.lines += 1;
            // keepalived reads '…' as quotes only where a command line is expected.
            let single = line
                .split_whitespace()
                .next()
                .is_some_and(|k| k == "script" || k.starts_with("notify"));
            match tokenize(line, single) {
                Ok(toks) => self.tokens.extend(toks.into_iter().map(|tok| Token {
                    tok,
                    loc: loc.clone(),
                    line: self.lines,
                })),
                Err(quote) => self.diags.error(
                    &loc,
                    format!("unterminated quote: add the closing {quote} on the same line"),
                ),
            }
        }
    }

    /// `include PATTERN`: every match in sorted order, relative to the including file's directory.
    fn include(&mut self, loc: &Loc, strict: bool, pattern: &str) {
        let pattern = unquote(pattern);
        if pattern.is_empty() {
            self.diags
                .error(loc, "include needs a file pattern: include conf.d/*.conf");
            return;
        }
        if pattern.len() > MAX_PATTERN_BYTES {
            self.diags.error(
                loc,
                format!(
                    "include: the pattern is longer than {MAX_PATTERN_BYTES} bytes, the longest \
                     path Linux takes"
                ),
            );
            return;
        }
        if self.open.len() >= MAX_INCLUDE_DEPTH {
            self.diags.error(
                loc,
                format!(
                    "include: files include each other more than {MAX_INCLUDE_DEPTH} deep; \
                     include the files from fewer levels"
                ),
            );
            return;
        }
        let Some(alternatives) = expand_braces(pattern) else {
            self.diags.error(
                loc,
                format!(
                    "include {pattern}: more than {MAX_ALTERNATIVES} {{a,b}} alternatives; \
                     use a glob such as conf.d/*.conf"
                ),
            );
            return;
        };
        let dir = loc.file.parent().unwrap_or(Path::new(""));
        let mut matched = false;
        for alternative in alternatives {
            let full = if Path::new(&alternative).is_absolute() || dir.as_os_str().is_empty() {
                alternative
            } else {
                // The directory is literal text, not a pattern.
                let dir = glob::Pattern::escape(&dir.to_string_lossy());
                format!("{dir}/{alternative}")
            };
            let paths = match glob::glob(&full) {
                Ok(paths) => paths,
                Err(e) => {
                    self.diags
                        .error(loc, format!("include {pattern}: bad pattern: {}", e.msg));
                    return;
                }
            };
            for path in paths {
                match path {
                    Ok(path) => {
                        matched = true;
                        self.included(loc, strict, &path);
                    }
                    Err(e) if strict => self.diags.error(loc, format!("include {pattern}: {e}")),
                    Err(e) => self.diags.warn(
                        loc,
                        format!("include {pattern}: {e}; skipped, as keepalived does"),
                    ),
                }
            }
        }
        if !matched {
            let what = format!(
                "include {pattern}: no file matches (relative paths start from {})",
                if dir.as_os_str().is_empty() {
                    Path::new(".").display()
                } else {
                    dir.display()
                }
            );
            if strict {
                self.diags.error(loc, what);
            } else {
                self.diags
                    .warn(loc, format!("{what}; nothing included, as in keepalived"));
            }
        }
    }

    fn included(&mut self, loc: &Loc, strict: bool, path: &Path) {
        // keepalived skips directories and executables (a script matched by mistake).
        match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => {
                self.diags.warn(
                    loc,
                    format!("include: {} is a directory, skipped", path.display()),
                );
                return;
            }
            Ok(meta) if meta.permissions().mode() & 0o111 != 0 => {
                self.diags.warn(
                    loc,
                    format!(
                        "include: {} is executable, skipped as keepalived does; chmod a-x it to \
                         include it",
                        path.display()
                    ),
                );
                return;
            }
            _ => {}
        }
        let real = canonical(path);
        if let Some(i) = self.open.iter().position(|f| *f == real) {
            let chain: Vec<String> = self.open[i..]
                .iter()
                .chain([&real])
                .map(|f| f.display().to_string())
                .collect();
            self.diags.error(
                loc,
                format!(
                    "include loop: {}; remove one of these includes",
                    chain.join(" includes ")
                ),
            );
            return;
        }
        match read_limited(path) {
            Ok(text) if self.bytes + text.len() as u64 > MAX_TOTAL_BYTES => self.diags.error(
                loc,
                format!(
                    "include: with {}, the configuration and its includes pass {} MiB, the most \
                     read here; check the include patterns",
                    path.display(),
                    MAX_TOTAL_BYTES >> 20
                ),
            ),
            Ok(text) => {
                self.open.push(real);
                self.file(Rc::from(path), &text);
                self.open.pop();
            }
            // Past the size limit is ours, not keepalived's: never skipped.
            Err(e) if strict || e.kind() == io::ErrorKind::FileTooLarge => self
                .diags
                .error(loc, format!("include: cannot read {}: {e}", path.display())),
            Err(e) => self.diags.warn(
                loc,
                format!(
                    "include: cannot read {}: {e}; skipped, as keepalived does",
                    path.display()
                ),
            ),
        }
    }
}

fn canonical(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `include PATTERN` and keepalived's checking variants (`includer`, `includem`, `includew`,
/// `includeb`, `includea`): all but `include` and `includer` make "no file matches" an error.
fn include_directive(line: &str) -> Option<(bool, &str)> {
    let rest = line.strip_prefix("include")?;
    let (strict, rest) = match rest.chars().next() {
        None => (false, rest),
        Some(c) if c.is_whitespace() => (false, rest),
        Some('r') => (false, &rest[1..]),
        Some('m' | 'w' | 'b' | 'a') => (true, &rest[1..]),
        Some(_) => return None,
    };
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| (strict, rest.trim()))
}

fn unquote(s: &str) -> &str {
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

/// csh-style `{a,b}` alternatives, which keepalived's glob(3) call expands (GLOB_BRACE), in
/// order; `None` past [`MAX_ALTERNATIVES`].
fn expand_braces(pattern: &str) -> Option<Vec<String>> {
    let mut done = Vec::new();
    // Patterns still to expand, the next one last.
    let mut todo = vec![pattern.to_string()];
    while let Some(pattern) = todo.pop() {
        match first_group(&pattern) {
            None => done.push(pattern),
            Some((open, bounds)) => {
                let close = bounds[bounds.len() - 1];
                let (head, tail) = (&pattern[..open], &pattern[close + 1..]);
                todo.extend(
                    bounds
                        .windows(2)
                        .rev()
                        .map(|w| format!("{head}{}{tail}", &pattern[w[0] + 1..w[1]])),
                );
            }
        }
        if done.len() + todo.len() > MAX_ALTERNATIVES {
            return None;
        }
    }
    Some(done)
}

/// The first complete `{…}` group of `pattern`: where it opens, and the positions of its `{`,
/// its top-level commas and its `}`.
fn first_group(pattern: &str) -> Option<(usize, Vec<usize>)> {
    let open = pattern.find('{')?;
    let mut depth = 0;
    let mut bounds = vec![open];
    for (i, c) in pattern[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    bounds.push(open + i);
                    return Some((open, bounds));
                }
            }
            ',' if depth == 1 => bounds.push(open + i),
            _ => {}
        }
    }
    None
}

/// Cuts a `#` or `!` comment, outside `"…"` (keepalived cuts one inside '…' too); `\#` and `\!`
/// stand for the characters themselves.
fn decomment(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('#' | '!')) if !quoted => out.push(e),
                Some(e) => {
                    out.push('\\');
                    out.push(e);
                }
                None => out.push('\\'),
            },
            '#' | '!' if !quoted => break,
            '"' => {
                quoted = !quoted;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out.trim_end().to_string()
}

/// Words, `{` and `}`. Quoted parts (`"…"`, and `'…'` when `single`) join the word around them
/// without their quotes; a backslash protects the next character and is kept, for the script
/// runner to read as keepalived does.
fn tokenize(line: &str, single: bool) -> Result<Vec<Tok>, char> {
    let mut toks = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else {
            return Ok(toks);
        };
        if c == '{' || c == '}' {
            chars.next();
            toks.push(if c == '{' { Tok::Open } else { Tok::Close });
            continue;
        }
        let mut word = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (c, quote) {
                (c, None) if c.is_whitespace() || c == '{' || c == '}' => break,
                ('"', None) => quote = Some(c),
                ('\'', None) if single => quote = Some(c),
                (c, Some(q)) if c == q => quote = None,
                ('\\', _) => {
                    word.push('\\');
                    chars.next();
                    match chars.peek() {
                        Some(&e) => word.push(e),
                        None => break,
                    }
                }
                (c, _) => word.push(c),
            }
            chars.next();
        }
        if let Some(q) = quote {
            return Err(q);
        }
        toks.push(Tok::Word(word));
    }
}

/// Groups tokens into statements: the words of one line, then a block if `{` follows.
fn build(tokens: Vec<Token>, diags: &mut Diags) -> Vec<Stmt> {
    // The blocks being filled, outermost first, each with where its `{` was.
    let mut frames: Vec<(Option<Loc>, Vec<Stmt>)> = vec![(None, Vec::new())];
    // The line whose statement further words extend; `{` may follow it.
    let mut current = None;
    let mut can_open = false;
    // Inside a block nested past MAX_DEPTH: how many braces are open there, all skipped.
    let mut skipped = 0usize;
    for Token { tok, loc, line } in tokens {
        if skipped > 0 {
            match tok {
                Tok::Open => skipped += 1,
                Tok::Close => skipped -= 1,
                Tok::Word(_) => {}
            }
            continue;
        }
        let (_, items) = frames.last_mut().expect("the top level is never closed");
        match tok {
            Tok::Word(word) => {
                match items.last_mut() {
                    Some(stmt) if current == Some(line) => stmt.words.push(word),
                    _ => items.push(Stmt {
                        loc,
                        words: vec![word],
                        block: None,
                    }),
                }
                current = Some(line);
                can_open = true;
            }
            Tok::Open if can_open && frames.len() > MAX_DEPTH => {
                diags.error(
                    &loc,
                    format!(
                        "blocks nested more than {MAX_DEPTH} deep (keepalived's nest 4 at \
                         most): this block is skipped; look for a missing '}}' above"
                    ),
                );
                skipped = 1;
                current = None;
                can_open = false;
            }
            Tok::Open if can_open => {
                frames.push((Some(loc), Vec::new()));
                current = None;
                can_open = false;
            }
            Tok::Open => diags.error(
                &loc,
                "'{' without a keyword before it: write KEYWORD { … }, or remove the '{'",
            ),
            Tok::Close => {
                current = None;
                can_open = false;
                if frames.len() == 1 {
                    diags.warn(
                        &loc,
                        "'}' closes no block: ignored, as keepalived does; remove it, or add the \
                         missing '{'",
                    );
                } else {
                    close(&mut frames);
                }
            }
        }
    }
    while frames.len() > 1 {
        let (open, _) = frames.last().expect("more than one frame");
        let open = open.clone().expect("inner frames have a '{'");
        let keyword = frames[frames.len() - 2]
            .1
            .last()
            .map_or("", |s| s.keyword())
            .to_string();
        diags.warn(
            &open,
            format!(
                "the {keyword} block opened here is never closed: it ends with the file, as in \
                 keepalived; add the missing '}}'"
            ),
        );
        close(&mut frames);
    }
    frames.pop().map(|(_, items)| items).unwrap_or_default()
}

/// Ends the innermost block, giving it to the statement that opened it.
fn close(frames: &mut Vec<(Option<Loc>, Vec<Stmt>)>) {
    let (_, items) = frames.pop().expect("an open block");
    let (_, parent) = frames.last_mut().expect("the top level");
    parent
        .last_mut()
        .expect("a block is opened after a statement")
        .block = Some(items);
}
