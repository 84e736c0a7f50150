//! Safety rules that hold without any fault injected: atomic uploads and their leftovers,
//! delete limits, unsafe remote names, local problems, one run per target.
//!
//! The parts: `atomic_uploads.rs`, `deletes.rs`, `type_changes.rs` (a file where a folder
//! was), `local_problems.rs`, `one_run.rs`.

mod atomic_uploads;
mod deletes;
mod local_problems;
mod one_run;
mod type_changes;

fn temp_files(dir: &std::path::Path) -> Vec<String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ftpsync-tmp"))
        .collect()
}
