//! Prerequisites between experiments: references checked, cycles refused, then resolved to
//! positions in the engine's running list.

use crate::problems::{Code, Problems};
use crate::snapshot::{Experiment, Status};

use super::{find_by_key, PreparedExperiment};

/// Every prerequisite must name another experiment of the snapshot and variants it has, and
/// the prerequisite graph must have no cycle.
/// `by_key` holds experiment indices in key order.
pub(super) fn check_prerequisites(
    experiments: &[Experiment],
    by_key: &[usize],
    problems: &mut Problems,
) {
    if experiments.iter().all(|e| e.prerequisites.is_empty()) {
        return;
    }
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); experiments.len()];
    for (i, exp) in experiments.iter().enumerate() {
        for (p, pre) in exp.prerequisites.iter().enumerate() {
            let path = || format!("experiments[{i}].prerequisites[{p}]");
            let Some(target) = find_by_key(experiments, by_key, &pre.experiment) else {
                problems.push(
                    format!("{}.experiment", path()),
                    format!("unknown experiment {:?}", pre.experiment),
                );
                continue;
            };
            if pre.variants.is_empty() {
                problems.push(format!("{}.variants", path()), "list at least one variant");
            }
            let Some(required) = experiments.get(target) else {
                continue;
            };
            if exp.status == Status::Running && required.status == Status::Draft {
                problems.push_coded(
                    format!("{}.experiment", path()),
                    Code::DraftPrerequisite,
                    format!(
                        "{:?} is a draft: it enrols nobody, so this experiment would enrol nobody",
                        pre.experiment
                    ),
                );
            }
            for name in &pre.variants {
                if !required.variants.iter().any(|v| v.key == *name) {
                    problems.push(
                        format!("{}.variants", path()),
                        format!("{:?} has no variant {name:?}", pre.experiment),
                    );
                }
            }
            if let Some(out) = edges.get_mut(i) {
                out.push(target);
            }
        }
    }
    if let Some(cycle) = find_cycle(&edges) {
        let names: Vec<&str> = cycle
            .iter()
            .filter_map(|i| experiments.get(*i).map(|e| e.key.as_str()))
            .collect();
        let first = cycle.first().copied().unwrap_or(0);
        problems.push(
            format!("experiments[{first}].prerequisites"),
            format!("prerequisites form a cycle: {}", names.join(" -> ")),
        );
    }
}

/// A cycle in the graph as a node list that starts and ends at the same node.
fn find_cycle(edges: &[Vec<usize>]) -> Option<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut marks = vec![Mark::New; edges.len()];
    for root in 0..edges.len() {
        if marks.get(root) != Some(&Mark::New) {
            continue;
        }
        // Iterative depth-first search: (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        if let Some(m) = marks.get_mut(root) {
            *m = Mark::OnPath;
        }
        while let Some(&mut (node, ref mut next)) = stack.last_mut() {
            let Some(&target) = edges.get(node).and_then(|out| out.get(*next)) else {
                if let Some(m) = marks.get_mut(node) {
                    *m = Mark::Done;
                }
                stack.pop();
                continue;
            };
            *next += 1;
            match marks.get(target) {
                Some(Mark::OnPath) => {
                    let from = stack.iter().position(|(n, _)| *n == target).unwrap_or(0);
                    let mut cycle: Vec<usize> = stack.iter().skip(from).map(|(n, _)| *n).collect();
                    cycle.push(target);
                    return Some(cycle);
                }
                Some(Mark::New) => {
                    if let Some(m) = marks.get_mut(target) {
                        *m = Mark::OnPath;
                    }
                    stack.push((target, 0));
                }
                _ => {}
            }
        }
    }
    None
}

/// Points every running experiment's prerequisites at positions in `running` (`None` when the
/// required experiment is not running: nobody is assigned there, so the requirement fails).
/// `running` is in key order, like `by_key`.
pub(super) fn resolve_prerequisites(
    experiments: &[Experiment],
    by_key: &[usize],
    running: &mut [PreparedExperiment],
) {
    let key_of = |p: &PreparedExperiment| experiments.get(p.index).map_or("", |e| e.key.as_str());
    for pos in 0..running.len() {
        let Some(exp) = running.get(pos).and_then(|p| experiments.get(p.index)) else {
            continue;
        };
        if exp.prerequisites.is_empty() {
            continue;
        }
        let links = exp
            .prerequisites
            .iter()
            .map(|pre| {
                let position = running
                    .binary_search_by(|p| key_of(p).cmp(pre.experiment.as_str()))
                    .ok();
                let variants = find_by_key(experiments, by_key, &pre.experiment)
                    .and_then(|i| experiments.get(i))
                    .map(|required| {
                        required
                            .variants
                            .iter()
                            .enumerate()
                            .filter(|(_, v)| pre.variants.contains(&v.key))
                            .map(|(i, _)| i)
                            .collect()
                    })
                    .unwrap_or_default();
                (position, variants)
            })
            .collect();
        if let Some(prepared) = running.get_mut(pos) {
            prepared.prerequisites = links;
        }
    }
}
