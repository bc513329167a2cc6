//! The rendered Kubernetes objects `tests/k8s_example.rs` reads, and how a container sees
//! them: its environment (`envFrom`, then `env`) and the files its ConfigMap volumes mount,
//! both resolved through the names the Deployment refers to (kustomize's generated names,
//! hashes included), never guessed.

use std::collections::{BTreeMap, HashMap};
use std::io::ErrorKind;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;
use serde_json::Value;

/// `kustomize build DIR`, else `kubectl kustomize DIR` (scripts/check-infra's order).
pub(crate) fn render(dir: &Path) -> String {
    let renderers: [(&str, &[&str]); 2] = [("kustomize", &["build"]), ("kubectl", &["kustomize"])];
    for (program, args) in renderers {
        let output = match Command::new(program).args(args).arg(dir).output() {
            Ok(output) => output,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => panic!("cannot run {program}: {e}"),
        };
        assert!(
            output.status.success(),
            "{program} {} {} failed:\n{}",
            args.join(" "),
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        return String::from_utf8(output.stdout).expect("kustomize output is UTF-8");
    }
    panic!(
        "neither kustomize nor kubectl is on PATH: one is needed to render deploy/k8s \
         (scripts/check-infra needs it too)"
    );
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Metadata {
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Deployment {
    pub(crate) spec: DeploymentSpec,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct DeploymentSpec {
    pub(crate) template: PodTemplate,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PodTemplate {
    pub(crate) metadata: Metadata,
    pub(crate) spec: PodSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodSpec {
    #[serde(default)]
    pub(crate) init_containers: Vec<Container>,
    pub(crate) containers: Vec<Container>,
    #[serde(default)]
    pub(crate) volumes: Vec<Volume>,
    pub(crate) termination_grace_period_seconds: Option<u64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Container {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) command: Vec<String>,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    #[serde(default)]
    pub(crate) env: Vec<EnvVar>,
    #[serde(default)]
    pub(crate) env_from: Vec<EnvFrom>,
    #[serde(default)]
    pub(crate) volume_mounts: Vec<VolumeMount>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvVar {
    pub(crate) name: String,
    pub(crate) value: Option<String>,
    pub(crate) value_from: Option<BTreeMap<String, Value>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EnvFrom {
    pub(crate) prefix: Option<String>,
    pub(crate) config_map_ref: Option<NameRef>,
    pub(crate) secret_ref: Option<NameRef>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct NameRef {
    pub(crate) name: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VolumeMount {
    pub(crate) name: String,
    pub(crate) mount_path: String,
    #[serde(default)]
    pub(crate) read_only: bool,
    pub(crate) sub_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Volume {
    pub(crate) name: String,
    pub(crate) config_map: Option<ConfigMapVolume>,
    pub(crate) empty_dir: Option<EmptyDir>,
    pub(crate) persistent_volume_claim: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConfigMapVolume {
    pub(crate) name: String,
    pub(crate) items: Option<Vec<KeyToPath>>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct KeyToPath {
    pub(crate) key: String,
    pub(crate) path: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EmptyDir {
    pub(crate) size_limit: Option<String>,
}

/// One rendering: its Deployment and its ConfigMaps' data by (generated) name.
#[derive(Debug, Clone)]
pub(crate) struct Rendered {
    pub(crate) deployment: Deployment,
    pub(crate) config_maps: HashMap<String, BTreeMap<String, String>>,
}

pub(crate) fn parse(yaml: &str, origin: &str) -> Rendered {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml)
        .unwrap_or_else(|e| panic!("{origin}: the kustomize output is not YAML: {e}"));
    let of_kind = |kind: &'static str| docs.iter().filter(move |d| d["kind"] == kind).cloned();
    let mut deployments: Vec<Deployment> = of_kind("Deployment")
        .map(|d| serde_json::from_value(d).expect("a Deployment"))
        .collect();
    assert_eq!(deployments.len(), 1, "{origin}: one Deployment expected");
    let config_maps = of_kind("ConfigMap")
        .map(|d| {
            let name = d["metadata"]["name"].as_str().expect("name").to_owned();
            let data = serde_json::from_value(d["data"].clone()).unwrap_or_default();
            (name, data)
        })
        .collect();
    Rendered {
        deployment: deployments.remove(0),
        config_maps,
    }
}

impl Rendered {
    pub(crate) fn pod(&self) -> &PodSpec {
        &self.deployment.spec.template.spec
    }

    pub(crate) fn container(&self, name: &str) -> &Container {
        let pod = self.pod();
        pod.init_containers
            .iter()
            .chain(&pod.containers)
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no container {name} in the Deployment"))
    }

    pub(crate) fn config_map(&self, name: &str) -> &BTreeMap<String, String> {
        self.config_maps
            .get(name)
            .unwrap_or_else(|| panic!("the Deployment refers to ConfigMap {name}, not rendered"))
    }

    pub(crate) fn volume(&self, name: &str) -> &Volume {
        self.pod()
            .volumes
            .iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("volumeMount of volume {name}, which the pod lacks"))
    }

    /// The environment the container starts with: `envFrom` in order, then `env` over it.
    pub(crate) fn env(&self, container: &Container) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        for source in &container.env_from {
            assert!(
                source.secret_ref.is_none(),
                "{}: envFrom a Secret, which this test cannot reproduce",
                container.name
            );
            let reference = source.config_map_ref.as_ref().expect("envFrom source");
            let prefix = source.prefix.as_deref().unwrap_or("");
            for (key, value) in self.config_map(&reference.name) {
                env.insert(format!("{prefix}{key}"), value.clone());
            }
        }
        for var in &container.env {
            let value = match (&var.value, &var.value_from) {
                (Some(value), None) => value.clone(),
                (None, Some(from)) => {
                    let reference = from.get("configMapKeyRef").unwrap_or_else(|| {
                        panic!("{}: {} comes from {from:?}", container.name, var.name)
                    });
                    let map = self.config_map(reference["name"].as_str().expect("name"));
                    map[reference["key"].as_str().expect("key")].clone()
                }
                _ => String::new(),
            };
            assert!(
                !value.contains("$("),
                "{}: {} refers to another variable, which this test does not expand",
                container.name,
                var.name
            );
            env.insert(var.name.clone(), value);
        }
        env
    }

    /// The text of the file at `path` in `container`, from the ConfigMap mounted there.
    pub(crate) fn file(&self, container: &Container, path: &Path) -> String {
        let mount = mount_holding(container, path).unwrap_or_else(|| {
            panic!(
                "{}: nothing is mounted at {}",
                container.name,
                path.display()
            )
        });
        let source = self
            .volume(&mount.name)
            .config_map
            .as_ref()
            .unwrap_or_else(|| {
                panic!(
                    "{}: {} is not from a ConfigMap",
                    container.name,
                    path.display()
                )
            });
        let in_volume = match &mount.sub_path {
            Some(sub_path) => sub_path.clone(),
            None => path
                .strip_prefix(&mount.mount_path)
                .expect("under the mount")
                .display()
                .to_string(),
        };
        let key = match &source.items {
            Some(items) => items
                .iter()
                .find(|i| i.path == in_volume)
                .map(|i| i.key.clone()),
            None => Some(in_volume),
        }
        .unwrap_or_else(|| panic!("{}: no ConfigMap key is {}", container.name, path.display()));
        self.config_map(&source.name)
            .get(&key)
            .unwrap_or_else(|| panic!("ConfigMap {} has no key {key}", source.name))
            .clone()
    }
}

/// The mount of `container` that holds `path`, the deepest if several do.
pub(crate) fn mount_holding<'c>(container: &'c Container, path: &Path) -> Option<&'c VolumeMount> {
    container
        .volume_mounts
        .iter()
        .filter(|m| path.starts_with(&m.mount_path))
        .max_by_key(|m| m.mount_path.len())
}
