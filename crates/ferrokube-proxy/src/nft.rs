//! Running `nft`: scripts go in on standard input and are applied as one
//! transaction (all or nothing), which is what keeps updates atomic.

use std::process::Stdio;

use anyhow::{bail, Context};
use tokio::io::AsyncWriteExt;

/// How to run `nft` (a command and its leading arguments, e.g.
/// `["nft"]` or `["ip", "netns", "exec", "ns1", "nft"]`).
#[derive(Clone, Debug)]
pub struct Nft {
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
    pub async fn apply(&self, script: &str) -> anyhow::Result<()> {
        let (program, args) = self.command.split_first().context("empty nft command")?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("running {program} (is the nftables package installed?)"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes()).await?;
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!(
                "nft refused the update: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    /// Removes the table (nothing when it is not there).
    pub async fn delete_table(&self, table: &str) -> anyhow::Result<()> {
        self.apply(&format!("add table ip {table}\ndelete table ip {table}\n"))
            .await
    }
}
