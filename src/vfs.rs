//! Paths in a Pipe's namespace (pure).
//!
//! A [`VPath`] is absolute and normalised: `/` or `/a/b`, no empty, `.` or `..` segments.
//! [`VPath::resolve`] interprets a client's argument against the working directory;
//! `..` at the root stays at the root, so no client path can leave the namespace. Client
//! names are never used as local file names: they only become catalog keys and object
//! keys (`prefix/a/b`).

use std::fmt;

/// Longest path accepted, in bytes.
pub const MAX_PATH: usize = 1024;
/// Longest single name, in bytes.
pub const MAX_NAME: usize = 255;
/// Deepest nesting accepted.
pub const MAX_DEPTH: usize = 32;

/// Why a client path was rejected; each maps to `553` with this sentence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("file names may not contain control characters")]
    ControlChar,
    #[error("a file name is longer than {MAX_NAME} bytes")]
    NameTooLong,
    #[error("the path is nested deeper than {MAX_DEPTH} directories")]
    TooDeep,
    #[error("the path is longer than {MAX_PATH} bytes")]
    TooLong,
}

/// A normalised absolute path inside one Pipe's namespace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VPath(String);

impl VPath {
    pub fn root() -> VPath {
        VPath("/".into())
    }

    /// Trusts `s` to be normalised (it comes from the catalog, which only holds resolved
    /// paths).
    pub fn from_normalised(s: &str) -> VPath {
        VPath(s.to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0 == "/"
    }

    /// The last segment (empty for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The containing directory (`None` for the root).
    pub fn parent(&self) -> Option<VPath> {
        if self.is_root() {
            return None;
        }
        let cut = self.0.rfind('/').unwrap_or(0);
        Some(if cut == 0 {
            VPath::root()
        } else {
            VPath(self.0[..cut].to_string())
        })
    }

    /// Resolves a client argument against `self` as the working directory.
    pub fn resolve(&self, arg: &str) -> Result<VPath, PathError> {
        if arg.chars().any(char::is_control) {
            return Err(PathError::ControlChar);
        }
        let mut segs: Vec<&str> = if arg.starts_with('/') {
            Vec::new()
        } else {
            self.segments().collect()
        };
        for seg in arg.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    segs.pop();
                }
                s if s.len() > MAX_NAME => return Err(PathError::NameTooLong),
                s => segs.push(s),
            }
        }
        if segs.len() > MAX_DEPTH {
            return Err(PathError::TooDeep);
        }
        let path = format!("/{}", segs.join("/"));
        if path.len() > MAX_PATH {
            return Err(PathError::TooLong);
        }
        Ok(VPath(path))
    }

    fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/').filter(|s| !s.is_empty())
    }

    /// `self` with `name` appended (name must be a single valid segment).
    pub fn child(&self, name: &str) -> VPath {
        if self.is_root() {
            VPath(format!("/{name}"))
        } else {
            VPath(format!("{}/{name}", self.0))
        }
    }

    /// True when `self` is `dir` or lies below it.
    pub fn is_within(&self, dir: &VPath) -> bool {
        dir.is_root()
            || self.0 == dir.0
            || (self.0.starts_with(&dir.0) && self.0.as_bytes().get(dir.0.len()) == Some(&b'/'))
    }

    /// `self` moved from below `from` to below `to` (for directory renames).
    pub fn rebase(&self, from: &VPath, to: &VPath) -> VPath {
        let rest = &self.0[from.0.len()..];
        if to.is_root() {
            VPath(if rest.is_empty() {
                "/".into()
            } else {
                rest.to_string()
            })
        } else {
            VPath(format!("{}{rest}", to.0))
        }
    }

    /// The object key under `prefix` (`prefix/a/b`, or `a/b` without a prefix).
    pub fn key(&self, prefix: &str) -> String {
        let rel = self.0.trim_start_matches('/');
        if prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{prefix}/{rel}")
        }
    }
}

impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> VPath {
        VPath::root().resolve(s).unwrap()
    }

    #[test]
    fn resolution_and_confinement() {
        let cwd = v("/a/b");
        let cases = [
            ("c.jpg", "/a/b/c.jpg"),
            ("/x", "/x"),
            ("../c", "/a/c"),
            ("../../../../etc/passwd", "/etc/passwd"),
            ("/../..", "/"),
            ("./d//e/", "/a/b/d/e"),
            ("..", "/a"),
            ("...", "/a/b/..."),
            ("a\\..\\b", "/a/b/a\\..\\b"),
            ("", "/a/b"),
        ];
        for (arg, want) in cases {
            assert_eq!(cwd.resolve(arg).unwrap().as_str(), want, "{arg}");
        }
        assert_eq!(cwd.resolve("a\0b"), Err(PathError::ControlChar));
        assert_eq!(cwd.resolve("a\r\nb"), Err(PathError::ControlChar));
        assert_eq!(cwd.resolve(&"n".repeat(256)), Err(PathError::NameTooLong));
        assert_eq!(
            VPath::root().resolve(&"d/".repeat(33)),
            Err(PathError::TooDeep)
        );
        assert_eq!(
            VPath::root().resolve(&format!(
                "{}/{}/{}/{}/{}",
                "x".repeat(250),
                "x".repeat(250),
                "x".repeat(250),
                "x".repeat(250),
                "x".repeat(250)
            )),
            Err(PathError::TooLong)
        );
    }

    #[test]
    fn parts() {
        assert_eq!(v("/a/b").parent(), Some(v("/a")));
        assert_eq!(v("/a").parent(), Some(VPath::root()));
        assert_eq!(VPath::root().parent(), None);
        assert_eq!(v("/a/b.jpg").name(), "b.jpg");
        assert_eq!(VPath::root().child("x"), v("/x"));
        assert!(v("/a/b").is_within(&v("/a")));
        assert!(!v("/ab").is_within(&v("/a")));
        assert!(v("/a").is_within(&VPath::root()));
        assert_eq!(v("/a/b/c").rebase(&v("/a"), &v("/z/y")), v("/z/y/b/c"));
        assert_eq!(v("/a/b").key("cell4"), "cell4/a/b");
        assert_eq!(v("/a/b").key(""), "a/b");
    }
}
