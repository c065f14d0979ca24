//! A real cluster on loopback: `weir jobmanager` (a [`TestServer`] clients connect to) and
//! `weir taskmanager` processes registered with it, each with its own data directory.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, TestServer};

pub struct TaskManagerProcess {
    child: Option<Child>,
    args: Vec<String>,
    pub log_path: PathBuf,
}

impl TaskManagerProcess {
    pub fn start(args: Vec<String>, log_path: PathBuf) -> Self {
        let mut tm = Self { child: None, args, log_path };
        tm.spawn();
        tm
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open taskmanager log");
        let child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(&self.args)
            .env("WEIR_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start weir taskmanager");
        self.child = Some(child);
    }

    /// SIGKILL, like `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the process and starts a new one with the same flags (it registers anew).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Sends `signal` (`STOP`, `CONT`) with kill(1).
    pub fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status();
        }
    }

    /// The exit status, once the process has exited by itself.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for TaskManagerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

pub struct TestCluster {
    pub jobmanager: TestServer,
    pub taskmanagers: Vec<TaskManagerProcess>,
    pub rpc_port: u16,
    dir: PathBuf,
    config: Option<PathBuf>,
}

impl TestCluster {
    /// A JobManager and `taskmanagers` TaskManagers of `slots` slots each, all reading
    /// `config` (a TOML file) when given, under `dir`.
    pub fn start(dir: &Path, taskmanagers: usize, slots: usize, config: Option<&Path>) -> Self {
        let rpc_port = free_port();
        let mut args = Vec::new();
        if let Some(config) = config {
            args.extend(["--config".to_string(), config.display().to_string()]);
        }
        args.extend(["jobmanager".to_string(), "--rpc".to_string(), format!("127.0.0.1:{rpc_port}")]);
        let jobmanager = TestServer::start_with(&dir.join("jobmanager"), &args);
        let mut cluster = Self {
            jobmanager,
            taskmanagers: Vec::new(),
            rpc_port,
            dir: dir.to_path_buf(),
            config: config.map(Path::to_path_buf),
        };
        for _ in 0..taskmanagers {
            cluster.add_taskmanager(slots, &[]);
        }
        cluster
    }

    /// Starts one more TaskManager (with `extra` flags) and returns its index.
    pub fn add_taskmanager(&mut self, slots: usize, extra: &[&str]) -> usize {
        let index = self.taskmanagers.len();
        let data_dir = self.dir.join(format!("taskmanager-{index}"));
        let mut args = Vec::new();
        if let Some(config) = &self.config {
            args.extend(["--config".to_string(), config.display().to_string()]);
        }
        args.extend([
            "taskmanager".to_string(),
            "--jobmanager".to_string(),
            format!("127.0.0.1:{}", self.rpc_port),
            "--slots".to_string(),
            slots.to_string(),
            "--data-dir".to_string(),
            data_dir.display().to_string(),
        ]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let log = self.dir.join(format!("taskmanager-{index}.log"));
        self.taskmanagers.push(TaskManagerProcess::start(args, log));
        index
    }

    /// Waits until `count` TaskManagers are active in `weir_catalog.taskmanagers`.
    pub async fn wait_for_taskmanagers(&self, count: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < deadline {
            let client = self.jobmanager.connect().await;
            match client
                .simple_query("SELECT count(*) FROM weir_catalog.taskmanagers WHERE role = 'worker' AND state = 'active'")
                .await
            {
                Ok(messages) => {
                    for m in messages {
                        if let tokio_postgres::SimpleQueryMessage::Row(r) = m {
                            last = r.get(0).unwrap_or("").to_string();
                        }
                    }
                    if last.parse::<usize>().is_ok_and(|n| n >= count) {
                        return Ok(());
                    }
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(format!(
            "{count} taskmanagers did not register within 60 s (active: {last})\njobmanager log:\n{}\ntaskmanager 0 log:\n{}",
            self.jobmanager.log(),
            self.taskmanagers.first().map(|t| t.log()).unwrap_or_default()
        ))
    }

    /// The logs of every process, for a failure message.
    pub fn logs(&self, lines: usize) -> String {
        let tail = |text: String| {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        };
        let mut out = format!("--- jobmanager ---\n{}", tail(self.jobmanager.log()));
        for (i, tm) in self.taskmanagers.iter().enumerate() {
            out.push_str(&format!("\n--- taskmanager {i} ---\n{}", tail(tm.log())));
        }
        out
    }
}
