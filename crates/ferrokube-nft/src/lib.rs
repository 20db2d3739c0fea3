//! Running `nft`: scripts go in on standard input and are applied as one
//! transaction (all or nothing), which is what keeps updates atomic. Shared by
//! the service proxy (its table), the network policy controller (its table)
//! and the node agent (the pods' masquerade rule,
//! and `ferrokube killall`, which removes the node's tables).

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

/// The nftables table (family `ip`) the service proxy owns by default, and
/// that `ferrokube killall` removes.
pub const PROXY_TABLE: &str = "ferrokube-proxy";

/// The nftables table (family `inet`) the network policy controller owns,
/// and that `ferrokube killall` removes.
pub const NETPOL_TABLE: &str = "ferrokube-netpol";

/// Why applying a ruleset failed.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// [`Nft::command`] is empty: there is no program to run.
    #[error("empty nft command")]
    EmptyCommand,
    /// The program could not be started (not installed, not executable).
    #[error("running {program} (is the nftables package installed?)")]
    Spawn {
        /// The program that was run (`nft`, or `ip` for `ip netns exec`).
        program: String,
        /// Why it did not start.
        #[source]
        source: std::io::Error,
    },
    /// Writing the script to `nft`'s standard input, or waiting for it, failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// `nft` ran and refused the script (nothing of it was applied).
    #[error("nft refused the update: {stderr}")]
    Refused {
        /// What `nft` wrote on standard error, trimmed.
        stderr: String,
    },
}

/// How to run `nft` (a command and its leading arguments, e.g.
/// `["nft"]` or `["ip", "netns", "exec", "ns1", "nft"]`).
#[derive(Clone, Debug)]
pub struct Nft {
    /// The program and its leading arguments; `-f -` is appended.
    pub command: Vec<String>,
}

impl Default for Nft {
    fn default() -> Self {
        Nft {
            command: vec!["nft".into()],
        }
    }
}

impl Nft {
    /// Applies `script` in one transaction.
    pub async fn apply(&self, script: &str) -> Result<(), NftError> {
        let (program, args) = self.command.split_first().ok_or(NftError::EmptyCommand)?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| NftError::Spawn {
                program: program.clone(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await?;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            return Err(NftError::Refused {
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Removes the table (nothing when it is not there).
    pub async fn delete_table(&self, table: &str) -> Result<(), NftError> {
        self.apply(&format!("add table ip {table}\ndelete table ip {table}\n"))
            .await
    }
}
