//! `kubectl-etcd`: the kubectl plugin (`kubectl etcd list`), the same tool as `etcdopctl`.

fn main() -> std::process::ExitCode {
    etcdopctl::main_as("kubectl etcd")
}
