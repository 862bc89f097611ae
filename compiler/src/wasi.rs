//! The functions of WASI preview 1 (`wasi_snapshot_preview1`) and their core Wasm signatures.

/// The import module name of WASI preview 1.
pub(crate) const MODULE: &str = "wasi_snapshot_preview1";

/// `(name, parameters, results)`, with `i` = i32 and `I` = i64, as in the witx definitions.
const FUNCTIONS: &[(&str, &str, &str)] = &[
    ("args_get", "ii", "i"),
    ("args_sizes_get", "ii", "i"),
    ("environ_get", "ii", "i"),
    ("environ_sizes_get", "ii", "i"),
    ("clock_res_get", "ii", "i"),
    ("clock_time_get", "iIi", "i"),
    ("fd_advise", "iIIi", "i"),
    ("fd_allocate", "iII", "i"),
    ("fd_close", "i", "i"),
    ("fd_datasync", "i", "i"),
    ("fd_fdstat_get", "ii", "i"),
    ("fd_fdstat_set_flags", "ii", "i"),
    ("fd_fdstat_set_rights", "iII", "i"),
    ("fd_filestat_get", "ii", "i"),
    ("fd_filestat_set_size", "iI", "i"),
    ("fd_filestat_set_times", "iIIi", "i"),
    ("fd_pread", "iiiIi", "i"),
    ("fd_prestat_get", "ii", "i"),
    ("fd_prestat_dir_name", "iii", "i"),
    ("fd_pwrite", "iiiIi", "i"),
    ("fd_read", "iiii", "i"),
    ("fd_readdir", "iiiIi", "i"),
    ("fd_renumber", "ii", "i"),
    ("fd_seek", "iIii", "i"),
    ("fd_sync", "i", "i"),
    ("fd_tell", "ii", "i"),
    ("fd_write", "iiii", "i"),
    ("path_create_directory", "iii", "i"),
    ("path_filestat_get", "iiiii", "i"),
    ("path_filestat_set_times", "iiiiIIi", "i"),
    ("path_link", "iiiiiii", "i"),
    ("path_open", "iiiiiIIii", "i"),
    ("path_readlink", "iiiiii", "i"),
    ("path_remove_directory", "iii", "i"),
    ("path_rename", "iiiiii", "i"),
    ("path_symlink", "iiiii", "i"),
    ("path_unlink_file", "iii", "i"),
    ("poll_oneoff", "iiii", "i"),
    ("proc_exit", "i", ""),
    ("proc_raise", "i", "i"),
    ("sched_yield", "", "i"),
    ("random_get", "ii", "i"),
    ("sock_accept", "iii", "i"),
    ("sock_recv", "iiiiii", "i"),
    ("sock_send", "iiiii", "i"),
    ("sock_shutdown", "ii", "i"),
];

/// The signature of WASI preview 1 function `name` as text (`(i32, i64) -> i32`), if it exists.
pub(crate) fn signature(name: &str) -> Option<String> {
    let (_, params, results) = FUNCTIONS.iter().find(|(n, _, _)| *n == name)?;
    let ty = |c: char| if c == 'I' { "i64" } else { "i32" };
    let params: Vec<_> = params.chars().map(ty).collect();
    let results: Vec<_> = results.chars().map(ty).collect();
    Some(crate::validate::render_signature(&params, &results))
}

#[cfg(test)]
mod tests {
    #[test]
    fn knows_fd_write() {
        assert_eq!(super::signature("fd_write").unwrap(), "(i32, i32, i32, i32) -> i32");
        assert_eq!(super::signature("proc_exit").unwrap(), "(i32)");
        assert!(super::signature("fd_frobnicate").is_none());
    }
}
