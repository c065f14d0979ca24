//! A file sink whose job starts again with no checkpoint to restore: killed before its first
//! checkpoint, or running with checkpoints off. Its sources replay from the beginning, so
//! the sink must first cut its file back to where the job began, or the rows written before
//! the kill are in the file twice. (Found under load in the fencing test, where a paused
//! TaskManager lost the sink's job before its first checkpoint committed.)

use std::time::Duration;

use crate::clients::{check, show};
use crate::fencing::paced_bids_to_file;
use crate::recovery::{allow_files, finish_and_flush_splits, reference_config, rows, write_config};
use crate::support::TestServer;

/// The lines of a file after its header, sorted: the sink's rows as a multiset.
fn sorted_rows(path: &std::path::Path) -> Result<(String, Vec<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().unwrap_or_default();
    let mut rows: Vec<String> = lines.collect();
    rows.sort();
    Ok((header, rows))
}

pub async fn a_file_sink_killed_before_its_first_checkpoint_writes_each_row_once() -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(show)?;
    // The victim never checkpoints: every restart is one without a checkpoint.
    let victim_config = write_config(
        &dir.path().join("victim.toml"),
        &format!(
            "state.backend = \"rocksdb\"\ncheckpoint.interval = \"off\"\n[streaming]\nbarrier_interval_ms = 100\n{}",
            allow_files(dir.path())
        ),
    )?;
    let mut victim = TestServer::start_with(&dir.path().join("victim"), &victim_config);
    let reference = TestServer::start_with(&dir.path().join("reference"), &reference_config(dir.path())?);
    let (expected_file, out_file) = (dir.path().join("expected.csv"), dir.path().join("out.csv"));
    // The sink appends to what its file held before it was created, and keeps that.
    for file in [&expected_file, &out_file] {
        std::fs::write(file, "earlier,line\n").map_err(show)?;
    }
    let events = 300_000;
    for (name, server, file) in [("reference", &reference, &expected_file), ("victim", &victim, &out_file)] {
        let client = server.connect().await;
        client
            .batch_execute(&paced_bids_to_file(events, 20_000, file, true))
            .await
            .map_err(|e| format!("{name} DDL: {e:?}"))?;
    }

    for kill in 1..=2 {
        // Kill once the sink has written some rows (its file is flushed at every barrier).
        let written = std::fs::metadata(&out_file).map(|m| m.len()).unwrap_or(0);
        for _ in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if std::fs::metadata(&out_file).map(|m| m.len()).unwrap_or(0) > written + 10_000 {
                break;
            }
        }
        let now = std::fs::metadata(&out_file).map(|m| m.len()).unwrap_or(0);
        println!("  kill {kill}: the sink file had {now} bytes");
        victim.restart();
    }

    finish_and_flush_splits(&reference, "reference", Duration::from_secs(120), 1).await?;
    let client = finish_and_flush_splits(&victim, "victim", Duration::from_secs(120), 1).await?;
    let ((expected_header, expected), (header, got)) =
        (sorted_rows(&expected_file)?, sorted_rows(&out_file)?);
    check(
        expected_header == "earlier,line" && header == expected_header,
        "the file's earlier line was lost",
    )?;
    if expected != got {
        let twice = got.windows(2).filter(|w| w[0] == w[1]).count();
        let log = victim.log_tail();
        drop(victim);
        let kept = dir.keep();
        return Err(format!(
            "the sink file has {} rows, the reference {} ({twice} adjacent repeats); kept in {}\n{log}",
            got.len(),
            expected.len(),
            kept.display()
        ));
    }
    check(expected.len() > 1000, format!("the reference sink wrote only {} rows", expected.len()))?;

    // The start marker beside the file goes with the sink.
    let marker = |d: &std::path::Path| {
        std::fs::read_dir(d).map(|entries| {
            entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().contains(".weir-sink-"))
        })
    };
    check(marker(dir.path()).map_err(show)?, "no start marker beside the sink file")?;
    rows(&client, "DROP SINK out").await?;
    let reference_client = reference.connect().await;
    reference_client.batch_execute("DROP SINK out").await.map_err(show)?;
    check(!marker(dir.path()).map_err(show)?, "DROP SINK left a start marker behind")?;
    println!("  {} rows in both files after 2 kills without a checkpoint", got.len());
    Ok(())
}
