//! The `ferrokube` binary: a thin command line over the component crates.

mod agent;
mod cli;
mod components;
mod controller_manager;
mod dashboard;
mod datastore;
mod identity;
mod localstorage;
mod server;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        cli::Command::Version => {
            println!("ferrokube version v{}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        cli::Command::Agent(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(agent::run(*args))),
        cli::Command::ControllerManager(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(controller_manager::run(*args))),
        cli::Command::Image(cli::ImageCommand::Import(args)) => {
            let endpoint = args.container_runtime_endpoint.clone().unwrap_or_else(|| {
                ferrokube_kubelet::images::endpoint_for_data_dir(&args.data_dir)
            });
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| {
                    rt.block_on(ferrokube_kubelet::import_images(&endpoint, &args.files))
                })
                .map(|names| println!("imported {} image name(s)", names.len()))
        }
        cli::Command::Dashboard(cli::DashboardCommand::Url(args)) => {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(anyhow::Error::from)
                .and_then(|rt| rt.block_on(dashboard::url(args)))
        }
        cli::Command::Killall(args) => killall(&args.data_dir),
        cli::Command::Server(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(server::run(*args))),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferrokube: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// `ferrokube killall`: stops the node of `data_dir` and removes what it made.
fn killall(data_dir: &std::path::Path) -> anyhow::Result<()> {
    let bridge = ferrokube_kubelet::KubeletConfig::new("", data_dir).cni_bridge;
    let r = ferrokube_kubelet::killall::killall(data_dir, &bridge)?;
    for (pid, name) in &r.stopped {
        println!("stopped {name} (pid {pid})");
    }
    println!(
        "killed {} shim(s) and {} process(es) under them",
        r.shims, r.processes
    );
    for m in &r.unmounted {
        println!("unmounted {}", m.display());
    }
    for n in &r.netns {
        println!("removed network namespace {}", n.display());
    }
    for (n, why) in &r.netns_left {
        eprintln!("could not remove network namespace {}: {why}", n.display());
    }
    for l in &r.links {
        println!("deleted link {l}");
    }
    for t in &r.tables {
        println!("deleted nftables table {t}");
    }
    for n in &r.pod_network {
        println!("removed {n}");
    }
    Ok(())
}
