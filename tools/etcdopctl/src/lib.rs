//! etcdopctl: the etcd operator's gRPC API from a shell, also as the kubectl plugin
//! `kubectl etcd`. Tables for people, JSON and YAML for programs, progress that follows the
//! status step by step, one line per error and documented exit codes.

mod backups;
mod certs;
pub mod cli;
mod commands;
mod connect;
pub mod error;
mod follow;
pub mod view;

use std::{io::Write, process::ExitCode};

use clap::{CommandFactory, FromArgMatches};

use cli::{BackupAction, Cli, Command};
use commands::Target;
use connect::Connection;
use error::CliError;

/// Runs the tool as `name` (`etcdopctl`, or `kubectl etcd` as a plugin) and returns its exit code.
pub fn main_as(name: &'static str) -> ExitCode {
    let matches = Cli::command().name(name).bin_name(name).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Command::Completion { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command().name(name), name, &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
    let result = match runtime {
        Ok(rt) => rt.block_on(run(cli)),
        Err(e) => Err(CliError::Config(format!("cannot start: {e}"))),
    };
    match result {
        Ok(text) => {
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(_) => ExitCode::from(1),
            }
        }
        Err(e) => {
            // One line, whatever the cause wrapped (a YAML parser quotes the input).
            let text = e.to_string();
            let line: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            eprintln!("{name}: {}", line.join(" "));
            e.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<String, CliError> {
    let conn = Connection::open(&cli.global).await?;
    match cli.command {
        Command::List { all_namespaces, output, watch: false } => {
            commands::list(&conn, all_namespaces, output).await
        }
        Command::List { all_namespaces, output, watch: true } => {
            commands::watch(|| commands::list(&conn, all_namespaces, output)).await.map(|()| String::new())
        }
        Command::Status { cluster, output, watch, fresh } => {
            let t = Target { conn: &conn, name: &cluster };
            if watch {
                commands::watch(|| commands::status(&t, output, fresh)).await.map(|()| String::new())
            } else {
                commands::status(&t, output, fresh).await
            }
        }
        Command::Scale { cluster, size, wait } => {
            if size < 1 {
                return Err(CliError::Config(format!(
                    "size {size}: scale takes 1 to 9 members; `stop {cluster}` stops the cluster"
                )));
            }
            commands::resize(&Target { conn: &conn, name: &cluster }, size, &wait).await
        }
        Command::Stop { cluster, wait } => {
            commands::resize(&Target { conn: &conn, name: &cluster }, 0, &wait).await
        }
        Command::Restart { cluster, size, wait } => {
            let t = Target { conn: &conn, name: &cluster };
            let now = t.status(false).await?;
            if now.phase != "Stopped" {
                return Err(CliError::Failed(format!(
                    "restart {}: it is {}, not Stopped; `scale` changes the size of a running cluster",
                    t.label(),
                    now.phase
                )));
            }
            commands::resize(&t, size, &wait).await
        }
        Command::Upgrade { cluster, to, wait } => {
            commands::upgrade(&Target { conn: &conn, name: &cluster }, &to, &wait).await
        }
        Command::ReplaceMember { cluster, member, wait } => {
            commands::replace_member(&Target { conn: &conn, name: &cluster }, &member, &wait).await
        }
        Command::Defrag { cluster, member } => {
            commands::defrag(&Target { conn: &conn, name: &cluster }, member.as_deref()).await
        }
        Command::Backup { action: BackupAction::Now { cluster, name, claim, path, storage_json, wait } } => {
            let now = backups::Now { cluster: &cluster, name, claim, path, storage_json };
            backups::now(&conn, now, &wait).await
        }
        Command::Backup { action: BackupAction::List { cluster, output } } => {
            backups::list(&conn, cluster.as_deref(), output).await
        }
        Command::Backup { action: BackupAction::Show { name, output } } => {
            backups::show(&conn, &name, output).await
        }
        Command::Restore { cluster, from_backup, size, etcd_version, storage_size, wait } => {
            let r = backups::Restore {
                from_backup: &from_backup,
                size,
                etcd_version: &etcd_version,
                storage_size: &storage_size,
            };
            backups::restore(&Target { conn: &conn, name: &cluster }, r, &wait).await
        }
        Command::Certs { cluster, output } => {
            certs::certs(&Target { conn: &conn, name: &cluster }, output).await
        }
        // Printed before connecting: it needs no server.
        Command::Completion { .. } => Ok(String::new()),
    }
}
