//! `ferrokube-lab`: the multi-node lab for people (`scripts/lab.sh`).
//! `up` builds a lab and keeps it until Ctrl-C (or, with `--detach`, until
//! `down`); `down` removes every lab recorded on this machine.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ferrokube_lab::{Lab, LabOptions};

#[derive(Debug, Parser)]
#[command(
    name = "ferrokube-lab",
    about = "A ferrokube cluster of several nodes on this machine"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build a lab: a server and NODES agents, each node in its own network namespace.
    Up {
        /// How many nodes.
        #[arg(long, default_value_t = 3)]
        nodes: usize,
        /// The ferrokube binary (default: $FERROKUBE_BIN or target/debug/ferrokube).
        #[arg(long)]
        ferrokube: Option<PathBuf>,
        /// A flag for `ferrokube server` (repeat).
        #[arg(long = "server-arg", allow_hyphen_values = true)]
        server_args: Vec<String>,
        /// A flag for every `ferrokube agent` (repeat).
        #[arg(long = "agent-arg", allow_hyphen_values = true)]
        agent_args: Vec<String>,
        /// Leave the lab running and exit (`down` removes it).
        #[arg(long)]
        detach: bool,
    },
    /// Remove every lab on this machine (processes, namespaces, veths, tables, files).
    Down,
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferrokube-lab: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Cmd::Down => {
            let errors = ferrokube_lab::remove_all();
            for e in &errors {
                eprintln!("ferrokube-lab: {e}");
            }
            if !errors.is_empty() {
                anyhow::bail!("some of the labs could not be removed");
            }
            Ok(())
        }
        Cmd::Up {
            nodes,
            ferrokube,
            server_args,
            agent_args,
            detach,
        } => {
            let mut opts = LabOptions {
                nodes,
                server_args,
                agent_args,
                ..Default::default()
            };
            if let Some(bin) = ferrokube {
                opts.ferrokube = bin;
            }
            let lab = Lab::up(opts)?;
            print_lab(&lab);
            if detach {
                lab.detach();
                return Ok(());
            }
            println!("Ctrl-C removes the lab.");
            wait_for_signal()?;
            drop(lab);
            Ok(())
        }
    }
}

fn print_lab(lab: &Lab) {
    println!(
        "lab up: server {} ({})",
        lab.server_url(),
        lab.dir().display()
    );
    for n in lab.nodes() {
        println!(
            "  {}: {} in netns {} (log {})",
            n.name,
            n.ip,
            n.netns,
            lab.dir().join(format!("{}.log", n.name)).display()
        );
    }
    println!("export KUBECONFIG={}", lab.kubeconfig().display());
}

/// Waits for SIGINT or SIGTERM.
fn wait_for_signal() -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        Ok(())
    })
}
