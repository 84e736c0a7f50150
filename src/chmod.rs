//! `--chmod` and `--perms`: the mode an uploaded file or a created folder gets on the server,
//! computed as rsync does. `--chmod` rules use rsync's syntax (`D755,F644`, `Fg-w`,
//! `u+rwx,go=rx`, `a+X`) and apply, in order, to the local entry's mode; `--perms` sends the
//! local mode (with the rules on top). Sending the mode (`SITE CHMOD`) is the engine's part
//! (`crate::engine::perms`).

use std::path::Path;

/// The bits a mode may hold: permissions, setuid, setgid and sticky.
const MODE_BITS: u32 = 0o7777;

/// Which entries a rule applies to (its `D` or `F` prefix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applies {
    Both,
    Folders,
    Files,
}

/// How a rule changes the bits it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `+`
    Add,
    /// `-`
    Remove,
    /// `=`
    Set,
    /// An octal mode: the whole mode.
    Octal,
}

/// One `--chmod` rule, kept as written: what it becomes depends on the umask (see
/// [`Rule::masks`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    applies: Applies,
    op: Op,
    /// The `u`, `g`, `o` as 0o100, 0o010, 0o001 (0o111 for `a`); 0 when none is named.
    who: u32,
    /// `rwx` as 4, 2, 1; for an octal rule, the mode.
    what: u32,
    /// The setuid, setgid and sticky bits the rule names (`s`, `t`).
    special: u32,
    /// The setuid and setgid bits its `u` and `g` stand for (what `=` clears with `s`).
    special_who: u32,
    /// `X`: execute only for folders and for files someone may execute already.
    x_keep: bool,
}

/// `--chmod RULES`: the comma-separated rules of one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChmodRules(pub(crate) Vec<Rule>);

/// A `--chmod` rule that is not rsync's syntax.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule:?}: {why} (write e.g. D755,F644, Fg-w or u+rwx,go=rx)")]
pub struct ChmodError {
    rule: String,
    why: &'static str,
}

/// Reads one `--chmod` value (clap's value parser).
pub(crate) fn parse_rules(text: &str) -> Result<ChmodRules, ChmodError> {
    text.split(',')
        .map(parse_rule)
        .collect::<Result<_, _>>()
        .map(ChmodRules)
}

/// One rule: `[DF]` then an octal mode, or `[ugoa]*[-+=][rwxXst]*` (rsync's grammar).
fn parse_rule(rule: &str) -> Result<Rule, ChmodError> {
    let bad = |why| ChmodError {
        rule: rule.to_string(),
        why,
    };
    let (applies, rest) = match rule.as_bytes().first() {
        Some(b'D') => (Applies::Folders, &rule[1..]),
        Some(b'F') => (Applies::Files, &rule[1..]),
        _ => (Applies::Both, rule),
    };
    if rest.is_empty() {
        return Err(bad("empty"));
    }
    let mut parsed = Rule {
        applies,
        op: Op::Octal,
        who: 0,
        what: 0,
        special: 0,
        special_who: 0,
        x_keep: false,
    };
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        parsed.what = u32::from_str_radix(rest, 8).map_err(|_| bad("not an octal mode"))?;
        if parsed.what > MODE_BITS {
            return Err(bad("an octal mode is at most 7777"));
        }
        return Ok(parsed);
    }
    let Some(at) = rest.find(['+', '-', '=']) else {
        return Err(bad("no +, - or = and not an octal mode"));
    };
    for who in rest[..at].chars() {
        let (bits, special) = match who {
            'u' => (0o100, 0o4000),
            'g' => (0o010, 0o2000),
            'o' => (0o001, 0),
            'a' => (0o111, 0),
            _ => return Err(bad("who is one of u, g, o, a")),
        };
        parsed.who |= bits;
        parsed.special_who |= special;
    }
    parsed.op = match &rest[at..at + 1] {
        "+" => Op::Add,
        "-" => Op::Remove,
        _ => Op::Set,
    };
    for what in rest[at + 1..].chars() {
        match what {
            'r' => parsed.what |= 4,
            'w' => parsed.what |= 2,
            'x' => parsed.what |= 1,
            'X' => {
                parsed.what |= 1;
                parsed.x_keep = true;
            }
            // As rsync: `s` with neither u nor g is setuid.
            's' if parsed.special_who == 0 => parsed.special = 0o4000,
            's' => parsed.special |= parsed.special_who,
            't' => parsed.special |= 0o1000,
            _ => return Err(bad("one operator, then permissions among r, w, x, X, s, t")),
        }
    }
    Ok(parsed)
}

impl Rule {
    fn applies_to(&self, folder: bool) -> bool {
        match self.applies {
            Applies::Both => true,
            Applies::Folders => folder,
            Applies::Files => !folder,
        }
    }

    /// The bits the rule keeps and the bits it sets (rsync's `ModeAND` and `ModeOR`). Without
    /// u, g, o or a, it is `a` with the umask's bits left alone, as in chmod(1).
    fn masks(&self, umask: u32) -> (u32, u32) {
        let (who, bits) = match self.who {
            0 => (0o111, (0o111 * self.what) & !umask),
            who => (who, who * self.what),
        };
        match self.op {
            Op::Octal => (0, self.what),
            Op::Add => (MODE_BITS, bits | self.special),
            Op::Remove => (MODE_BITS & !bits & !self.special, 0),
            Op::Set => {
                // `s` also clears the setuid and setgid bits of the u and g named.
                let special_who = if self.special != 0 {
                    self.special_who
                } else {
                    0
                };
                let cleared = (who * 7) | special_who;
                (MODE_BITS & !cleared, bits | self.special)
            }
        }
    }
}

/// `--chmod` rules applied in order to `mode` (rsync's `tweak_mode`).
fn apply(rules: &[Rule], mode: u32, folder: bool, umask: u32) -> u32 {
    let executable = mode & 0o111 != 0;
    let mut mode = mode & MODE_BITS;
    for rule in rules.iter().filter(|r| r.applies_to(folder)) {
        let (keep, set) = rule.masks(umask);
        mode &= keep;
        mode |= match rule.x_keep && !executable && !folder {
            true => set & !0o111,
            false => set,
        };
    }
    mode
}

/// What `--perms` and `--chmod` ask for, settled for a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Modes {
    /// `--perms`: every entry gets a mode, from its local one.
    perms: bool,
    /// The `--chmod` rules of all the options given, in order.
    rules: Vec<Rule>,
    /// This process's umask, for rules that name no u, g, o or a.
    umask: u32,
}

impl Modes {
    /// None when neither option is given: then no mode is ever sent.
    pub(crate) fn new(perms: bool, rules: Vec<ChmodRules>, umask: u32) -> Option<Modes> {
        let rules: Vec<Rule> = rules.into_iter().flat_map(|r| r.0).collect();
        (perms || !rules.is_empty()).then_some(Modes {
            perms,
            rules,
            umask,
        })
    }

    /// The mode for an entry whose local mode is `local`; None when none is to be sent (no
    /// `--perms`, and no rule for this kind of entry).
    fn mode(&self, local: u32, folder: bool) -> Option<u32> {
        let ruled = self.rules.iter().any(|r| r.applies_to(folder));
        (self.perms || ruled).then(|| apply(&self.rules, local, folder, self.umask))
    }

    /// The mode for the local file or folder at `path` (links followed, as uploads read them);
    /// None when none is to be sent or the entry cannot be read.
    pub(crate) fn mode_of(&self, path: &Path) -> Option<u32> {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path).ok()?;
        self.mode(metadata.permissions().mode(), metadata.is_dir())
    }
}

/// This process's umask (Linux reports it in /proc/self/status); 022 where it cannot be read.
pub(crate) fn process_umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Umask:"))?;
            u32::from_str_radix(line["Umask:".len()..].trim(), 8).ok()
        })
        .unwrap_or(0o022)
}

#[cfg(test)]
mod tests;
