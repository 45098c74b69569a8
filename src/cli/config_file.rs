//! The YAML config file of `skiff server` (`/etc/skiff/config.yaml`).
//!
//! Its keys are the long flag names (`data-dir: /x`, `tls-san: [a, b]`).
//! Values are read as text so that one validator checks a value the same way
//! wherever it came from; a key that is no flag is an error, so a typo never
//! silently falls back to a default.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Errors reading the config file; each names the file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("config file {0} does not exist; create it or drop --config")]
    Missing(PathBuf),
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid YAML: {detail}")]
    Syntax { path: PathBuf, detail: String },
    #[error("config file {0} must be a mapping of flag names to values, such as `data-dir: /x`")]
    NotAMapping(PathBuf),
    #[error(
        "unknown key `{key}` in config file {path}: keys are the long flag names of `skiff server` (without --), such as data-dir or tls-san"
    )]
    UnknownKey { path: PathBuf, key: String },
    #[error("key `{key}` in config file {path} must be {expected}, such as `{key}: {example}`")]
    WrongType {
        path: PathBuf,
        key: String,
        expected: &'static str,
        example: &'static str,
    },
}

/// A value from the config file, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileValue {
    One(String),
    List(Vec<String>),
}

/// The settings of one config file.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    /// Where the settings came from, for messages.
    pub path: PathBuf,
    pub values: BTreeMap<String, FileValue>,
}

impl ConfigFile {
    /// Reads `path`. A missing file is an error only when `explicit` (given
    /// with --config or SKIFF_CONFIG); the default path may well not exist.
    pub fn load(path: &Path, explicit: bool, known_keys: &[&str]) -> Result<Self, ConfigFileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(ConfigFile {
                    path: path.to_path_buf(),
                    values: BTreeMap::new(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ConfigFileError::Missing(path.to_path_buf()));
            }
            Err(source) => {
                return Err(ConfigFileError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Self::parse(path, &text, known_keys)
    }

    /// Parses the text of a config file read from `path`.
    pub fn parse(path: &Path, text: &str, known_keys: &[&str]) -> Result<Self, ConfigFileError> {
        // A file with nothing but comments (or nothing at all) sets nothing.
        if text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            return Ok(ConfigFile::default_at(path));
        }
        let doc: Value = serde_saphyr::from_str(text).map_err(|e| ConfigFileError::Syntax {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let mapping = match doc {
            Value::Null => return Ok(ConfigFile::default_at(path)),
            Value::Object(m) => m,
            _ => return Err(ConfigFileError::NotAMapping(path.to_path_buf())),
        };
        let mut values = BTreeMap::new();
        for (key, value) in mapping {
            if !known_keys.contains(&key.as_str()) {
                return Err(ConfigFileError::UnknownKey {
                    path: path.to_path_buf(),
                    key,
                });
            }
            let wrong_type = |expected, example| ConfigFileError::WrongType {
                path: path.to_path_buf(),
                key: key.clone(),
                expected,
                example,
            };
            let value = match value {
                Value::Array(items) => FileValue::List(
                    items
                        .iter()
                        .map(|item| {
                            scalar_text(item)
                                .ok_or_else(|| wrong_type("a list of strings", "[a, b]"))
                        })
                        .collect::<Result<_, _>>()?,
                ),
                other if key == "tls-san" => FileValue::List(vec![
                    scalar_text(&other).ok_or_else(|| wrong_type("a list of names", "[a, b]"))?,
                ]),
                other => FileValue::One(
                    scalar_text(&other).ok_or_else(|| wrong_type("a single value", "value"))?,
                ),
            };
            values.insert(key, value);
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            values,
        })
    }

    fn default_at(path: &Path) -> Self {
        ConfigFile {
            path: path.to_path_buf(),
            values: BTreeMap::new(),
        }
    }
}

/// The text of a YAML scalar (string, number or boolean).
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEYS: &[&str] = &["data-dir", "tls-san", "https-listen-port", "disable-agent"];

    #[test]
    fn reads_scalars_and_lists() {
        let f = ConfigFile::parse(
            Path::new("c.yaml"),
            "data-dir: /x\ntls-san: [a, 10.0.0.1]\nhttps-listen-port: 7443\ndisable-agent: true\n",
            KEYS,
        )
        .expect("valid file");
        assert_eq!(f.values["data-dir"], FileValue::One("/x".into()));
        assert_eq!(
            f.values["tls-san"],
            FileValue::List(vec!["a".into(), "10.0.0.1".into()])
        );
        assert_eq!(f.values["https-listen-port"], FileValue::One("7443".into()));
        assert_eq!(f.values["disable-agent"], FileValue::One("true".into()));
    }

    #[test]
    fn empty_file_is_no_settings() {
        let f = ConfigFile::parse(Path::new("c.yaml"), "", KEYS).expect("empty is fine");
        assert!(f.values.is_empty());
    }

    #[test]
    fn unknown_key_is_named() {
        let err = ConfigFile::parse(Path::new("c.yaml"), "data-dri: /x\n", KEYS).unwrap_err();
        assert!(err.to_string().contains("unknown key `data-dri`"), "{err}");
    }

    #[test]
    fn nested_value_is_rejected() {
        let err = ConfigFile::parse(Path::new("c.yaml"), "data-dir: {a: b}\n", KEYS).unwrap_err();
        assert!(err.to_string().contains("data-dir"), "{err}");
    }
}
