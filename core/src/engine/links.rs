//! Prerequisites between experiments: references checked, cycles refused, then resolved to
//! positions in the engine's running list.

use std::collections::BTreeMap;

use crate::problems::Problems;
use crate::snapshot::Experiment;

use super::PreparedExperiment;

/// Every prerequisite must name another experiment of the snapshot and variants it has, and
/// the prerequisite graph must have no cycle.
pub(super) fn check_prerequisites(experiments: &[Experiment], problems: &mut Problems) {
    let by_key: BTreeMap<&str, usize> = experiments
        .iter()
        .enumerate()
        .map(|(i, e)| (e.key.as_str(), i))
        .collect();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); experiments.len()];
    for (i, exp) in experiments.iter().enumerate() {
        for (p, pre) in exp.prerequisites.iter().enumerate() {
            let path = || format!("experiments[{i}].prerequisites[{p}]");
            let Some(&target) = by_key.get(pre.experiment.as_str()) else {
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
pub(super) fn resolve_prerequisites(
    experiments: &[Experiment],
    running: &mut [PreparedExperiment],
) {
    let position: BTreeMap<&str, usize> = running
        .iter()
        .enumerate()
        .filter_map(|(pos, p)| experiments.get(p.index).map(|e| (e.key.as_str(), pos)))
        .collect();
    for prepared in running.iter_mut() {
        let Some(exp) = experiments.get(prepared.index) else {
            continue;
        };
        prepared.prerequisites = exp
            .prerequisites
            .iter()
            .map(|pre| {
                let variants = experiments
                    .iter()
                    .find(|e| e.key == pre.experiment)
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
                (position.get(pre.experiment.as_str()).copied(), variants)
            })
            .collect();
    }
}
