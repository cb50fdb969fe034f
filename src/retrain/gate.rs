//! The quality gate a candidate must pass to be promoted: conditions on
//! holdout metrics, absolute (`rmse <= 0.9`) or relative to the current
//! model (`rmse <= 1.005 * current`, `ndcg@10 >= current - 0.002`), joined
//! by `and` or commas.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Le,
    Lt,
    Ge,
    Gt,
}

impl Op {
    fn holds(self, a: f64, b: f64) -> bool {
        match self {
            Op::Le => a <= b,
            Op::Lt => a < b,
            Op::Ge => a >= b,
            Op::Gt => a > b,
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            Op::Le => "<=",
            Op::Lt => "<",
            Op::Ge => ">=",
            Op::Gt => ">",
        }
    }
}

/// `factor · current + offset`, or a constant when `relative` is false.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Rhs {
    relative: bool,
    factor: f64,
    offset: f64,
}

#[derive(Clone, Debug, PartialEq)]
struct Cond {
    metric: String,
    op: Op,
    rhs: Rhs,
}

/// A parsed gate. See the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    conds: Vec<Cond>,
}

/// The verdict and a line per condition, for the history and the log.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    pub lines: Vec<String>,
}

/// Whether a metric name is one evaluation produces.
fn known_metric(m: &str) -> bool {
    if matches!(m, "rmse" | "mae" | "auc") {
        return true;
    }
    match m.split_once('@') {
        Some((name, k)) => {
            matches!(name, "precision" | "recall" | "ndcg" | "map" | "coverage")
                && k.parse::<usize>().is_ok_and(|k| k > 0)
        }
        None => false,
    }
}

fn number(s: &str, whole: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("gate {whole:?}: {s:?} is not a number"))
}

fn parse_rhs(s: &str, whole: &str) -> Result<Rhs, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let Some(at) = t.find("current") else {
        return Ok(Rhs {
            relative: false,
            factor: 0.0,
            offset: number(&t, whole)?,
        });
    };
    let (before, after) = (&t[..at], &t[at + "current".len()..]);
    let mut factor = match before {
        "" => 1.0,
        b => number(
            b.strip_suffix('*')
                .ok_or_else(|| format!("gate {whole:?}: expected `N * current`"))?,
            whole,
        )?,
    };
    let mut rest = after;
    if let Some(r) = rest.strip_prefix('*') {
        // The factor ends at the first sign after its own first character.
        let end = r
            .char_indices()
            .skip(1)
            .find(|&(_, c)| c == '+' || c == '-')
            .map_or(r.len(), |(p, _)| p);
        factor *= number(&r[..end], whole)?;
        rest = &r[end..];
    }
    let offset = match rest {
        "" => 0.0,
        r if r.starts_with('+') => number(&r[1..], whole)?,
        r if r.starts_with('-') => -number(&r[1..], whole)?,
        r => return Err(format!("gate {whole:?}: cannot read {r:?} after `current`")),
    };
    Ok(Rhs {
        relative: true,
        factor,
        offset,
    })
}

impl FromStr for Gate {
    type Err = String;
    fn from_str(s: &str) -> Result<Gate, String> {
        let mut conds = Vec::new();
        let spaced = format!(" {s} ");
        for part in spaced.split(" and ").flat_map(|p| p.split(',')) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (pos, op, len) = ["<=", ">=", "<", ">"]
                .iter()
                .find_map(|o| part.find(o).map(|p| (p, *o, o.len())))
                .ok_or_else(|| {
                    format!("gate condition {part:?} needs a comparison (<=, <, >=, >)")
                })?;
            let metric = part[..pos].trim().to_ascii_lowercase();
            if !known_metric(&metric) {
                return Err(format!(
                    "gate condition {part:?}: unknown metric {metric:?} (rmse, mae, auc, \
                     precision@K, recall@K, ndcg@K, map@K, coverage@K)"
                ));
            }
            let op = match op {
                "<=" => Op::Le,
                ">=" => Op::Ge,
                "<" => Op::Lt,
                _ => Op::Gt,
            };
            let rhs = parse_rhs(&part[pos + len..], part)?;
            conds.push(Cond { metric, op, rhs });
        }
        if conds.is_empty() {
            return Err(format!("gate {s:?} has no condition"));
        }
        Ok(Gate { conds })
    }
}

impl fmt::Display for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .conds
            .iter()
            .map(|c| {
                let r = &c.rhs;
                let rhs = if !r.relative {
                    format!("{}", r.offset)
                } else {
                    let mut s = if r.factor == 1.0 {
                        "current".to_string()
                    } else {
                        format!("{} * current", r.factor)
                    };
                    if r.offset > 0.0 {
                        s += &format!(" + {}", r.offset);
                    } else if r.offset < 0.0 {
                        s += &format!(" - {}", -r.offset);
                    }
                    s
                };
                format!("{} {} {rhs}", c.metric, c.op.as_str())
            })
            .collect();
        write!(f, "{}", parts.join(" and "))
    }
}

impl Gate {
    /// The metrics the gate reads, so evaluation computes them.
    pub fn metrics(&self) -> Vec<String> {
        let mut m: Vec<String> = self.conds.iter().map(|c| c.metric.clone()).collect();
        m.sort();
        m.dedup();
        m
    }

    /// Cut-offs k of the ranking metrics the gate reads.
    pub fn ranking_ks(&self) -> Vec<usize> {
        let mut ks: Vec<usize> = self
            .conds
            .iter()
            .filter_map(|c| c.metric.split_once('@').and_then(|(_, k)| k.parse().ok()))
            .collect();
        ks.sort_unstable();
        ks.dedup();
        ks
    }

    /// Checks the candidate's metrics; conditions relative to the current
    /// model pass when there is none (the first model has nothing to beat).
    /// A metric missing or not finite fails its condition.
    pub fn check(
        &self,
        candidate: &BTreeMap<String, f64>,
        current: Option<&BTreeMap<String, f64>>,
    ) -> Verdict {
        let mut pass = true;
        let mut lines = Vec::new();
        for c in &self.conds {
            let Some(&v) = candidate.get(&c.metric).filter(|v| v.is_finite()) else {
                pass = false;
                lines.push(format!("{}: candidate has no value → fail", c.metric));
                continue;
            };
            let bound = if c.rhs.relative {
                match current.map(|m| m.get(&c.metric).copied()) {
                    None => {
                        lines.push(format!(
                            "{} = {v:.6}: no current model to compare with → pass",
                            c.metric
                        ));
                        continue;
                    }
                    Some(None) => {
                        pass = false;
                        lines.push(format!(
                            "{}: the current model has no value → fail",
                            c.metric
                        ));
                        continue;
                    }
                    Some(Some(cur)) => c.rhs.factor * cur + c.rhs.offset,
                }
            } else {
                c.rhs.offset
            };
            let ok = c.op.holds(v, bound);
            pass &= ok;
            lines.push(format!(
                "{} = {v:.6} {} {bound:.6} → {}",
                c.metric,
                c.op.as_str(),
                if ok { "pass" } else { "fail" }
            ));
        }
        Verdict { pass, lines }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, f64)]) -> BTreeMap<String, f64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn parses_relative_and_absolute_conditions() {
        let g: Gate = "rmse <= 1.005 * current and ndcg@10 >= current - 0.002, mae < 0.8"
            .parse()
            .unwrap();
        assert_eq!(g.conds.len(), 3);
        assert_eq!(
            g.conds[0].rhs,
            Rhs {
                relative: true,
                factor: 1.005,
                offset: 0.0
            }
        );
        assert_eq!(g.conds[1].rhs.offset, -0.002);
        assert!(!g.conds[2].rhs.relative);
        assert_eq!(g.ranking_ks(), vec![10]);
        // Display parses back to the same gate.
        let again: Gate = g.to_string().parse().unwrap();
        assert_eq!(again, g);
        let g: Gate = "precision@5>=current*0.99+0.001".parse().unwrap();
        assert_eq!(
            g.conds[0].rhs,
            Rhs {
                relative: true,
                factor: 0.99,
                offset: 0.001
            }
        );
    }

    #[test]
    fn rejects_bad_gates_with_the_reason() {
        for (s, want) in [
            ("rmse 1.0", "needs a comparison"),
            ("loss <= current", "unknown metric"),
            ("rmse <= x * current", "not a number"),
            ("rmse <= current ^ 2", "cannot read"),
            ("", "no condition"),
            ("ndcg@0 >= 0.1", "unknown metric"),
        ] {
            let e = s.parse::<Gate>().unwrap_err();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn checks_against_the_current_model() {
        let g: Gate = "rmse <= 1.005 * current".parse().unwrap();
        let cur = m(&[("rmse", 0.90)]);
        assert!(g.check(&m(&[("rmse", 0.9045)]), Some(&cur)).pass);
        assert!(!g.check(&m(&[("rmse", 0.9046)]), Some(&cur)).pass);
        // First model: nothing to compare with.
        assert!(g.check(&m(&[("rmse", 5.0)]), None).pass);
        // Missing or NaN metrics fail.
        assert!(!g.check(&m(&[]), Some(&cur)).pass);
        assert!(!g.check(&m(&[("rmse", f64::NAN)]), Some(&cur)).pass);
        let g: Gate = "ndcg@10 >= current".parse().unwrap();
        let v = g.check(&m(&[("ndcg@10", 0.31)]), Some(&m(&[("ndcg@10", 0.30)])));
        assert!(v.pass, "{:?}", v.lines);
    }
}
