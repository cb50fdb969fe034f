//! Stage two of the command line: raw clap args become the library's
//! checked types (a [`Trainer`], a [`TrainConfig`]) before any file is
//! opened, so a wrong flag fails in milliseconds. Defaults come from the
//! params types only: a flag left out keeps the library's default, and the
//! help text prints those same defaults.

use anyhow::{bail, Result};

use super::args::{
    Algo, AlgoArgs, ConfidenceArg, EngineArg, EngineArgs, ListHeadArg, SolverArg, TrainArgs,
};
use super::DEFAULT_DATA;
use crate::engine::pipeline::{SetByUser, TestSide, TrainConfig};
use crate::engine::Trainer;
use crate::train::als::{AlsParams, Confidence, Solver};
use crate::train::bpr::BprParams;
use crate::train::sgd::SgdParams;

/// What a run trains, for the flag-applicability rules.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Sgd,
    AlsImplicit,
    AlsRatings,
    Bpr,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Sgd => "sgd",
            Kind::AlsImplicit => "implicit ALS",
            Kind::AlsRatings => "ALS on ratings",
            Kind::Bpr => "bpr",
        }
    }
}

/// Flags that only some algorithms read, with the algorithms that read them.
const ONLY_FOR: &[(&str, &[Kind], &str)] = &[
    ("--learning-rate", &[Kind::Sgd, Kind::Bpr], "sgd and bpr"),
    ("--lr-decay", &[Kind::Sgd], "sgd"),
    ("--reg-bias", &[Kind::Sgd], "sgd"),
    ("--no-biases", &[Kind::Sgd], "sgd"),
    ("--adagrad", &[Kind::Sgd], "sgd"),
    ("--lead-factors", &[Kind::Sgd], "sgd"),
    ("--alpha", &[Kind::AlsImplicit], "implicit ALS"),
    ("--confidence", &[Kind::AlsImplicit], "implicit ALS"),
    ("--eps", &[Kind::AlsImplicit], "implicit ALS"),
    ("--cg-steps", &[Kind::AlsImplicit], "implicit ALS"),
    ("--solver", &[Kind::AlsImplicit, Kind::AlsRatings], "als"),
    (
        "--no-scale-reg",
        &[Kind::AlsImplicit, Kind::AlsRatings],
        "als",
    ),
];

fn flags_set(a: &AlgoArgs) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut on = |set: bool, name: &'static str| {
        if set {
            v.push(name);
        }
    };
    on(a.learning_rate.is_some(), "--learning-rate");
    on(a.lr_decay.is_some(), "--lr-decay");
    on(a.reg_bias.is_some(), "--reg-bias");
    on(a.no_biases, "--no-biases");
    on(a.adagrad, "--adagrad");
    on(a.lead_factors.is_some(), "--lead-factors");
    on(a.alpha.is_some(), "--alpha");
    on(a.confidence.is_some(), "--confidence");
    on(a.eps.is_some(), "--eps");
    on(a.cg_steps.is_some(), "--cg-steps");
    on(a.solver.is_some(), "--solver");
    on(a.no_scale_reg, "--no-scale-reg");
    v
}

/// The validated trainer the algorithm flags describe. `epochs` and
/// `patience` are the run's own (train has both, retrain neither);
/// `positive_threshold` implies implicit feedback unless the algorithm is sgd.
pub(super) fn trainer(
    a: &AlgoArgs,
    epochs: Option<usize>,
    patience: Option<usize>,
    positive_threshold: Option<f32>,
    engine: &EngineArgs,
    spark_k: usize,
) -> Result<Trainer> {
    let implicit = a.implicit || (positive_threshold.is_some() && a.algo != Some(Algo::Sgd));
    let spark = engine.engine == EngineArg::Spark;
    let algo = a.algo.unwrap_or(if implicit || spark {
        Algo::Als
    } else {
        Algo::Sgd
    });
    if implicit && algo == Algo::Sgd {
        bail!("--algo sgd fits ratings; for implicit feedback use --algo als or --algo bpr");
    }
    let kind = match algo {
        Algo::Sgd => Kind::Sgd,
        Algo::Als if implicit => Kind::AlsImplicit,
        Algo::Als => Kind::AlsRatings,
        Algo::Bpr => Kind::Bpr,
    };
    for flag in flags_set(a) {
        if let Some((_, kinds, who)) = ONLY_FOR.iter().find(|(f, ..)| *f == flag) {
            if !kinds.contains(&kind) {
                bail!(
                    "{flag} applies to {who} only; this run trains {}",
                    kind.name()
                );
            }
        }
    }
    if spark && algo != Algo::Als {
        bail!("--engine spark trains ALS (--algo als) without --validation");
    }
    let set = |d: usize, v: Option<usize>| v.unwrap_or(d);
    let setf = |d: f32, v: Option<f32>| v.unwrap_or(d);
    Ok(match algo {
        Algo::Sgd => {
            let d = SgdParams::default();
            Trainer::Sgd(
                SgdParams {
                    factors: set(d.factors, a.factors),
                    epochs: set(d.epochs, epochs),
                    learning_rate: setf(d.learning_rate, a.learning_rate),
                    lr_decay: setf(d.lr_decay, a.lr_decay),
                    reg_factors: setf(d.reg_factors, a.reg),
                    reg_bias: setf(d.reg_bias, a.reg_bias),
                    init_std: setf(d.init_std, a.init_std),
                    seed: a.seed,
                    threads: a.threads,
                    patience,
                    biases: !a.no_biases,
                    adagrad: a.adagrad,
                    lead_factors: set(d.lead_factors, a.lead_factors),
                }
                .check()?,
            )
        }
        Algo::Als => {
            let d = AlsParams::for_feedback(implicit);
            let p = AlsParams {
                factors: set(d.factors, a.factors),
                epochs: set(d.epochs, epochs),
                implicit,
                reg: setf(d.reg, a.reg),
                scale_reg: !a.no_scale_reg,
                alpha: setf(d.alpha, a.alpha),
                confidence: match a.confidence {
                    Some(ConfidenceArg::Linear) => Confidence::Linear,
                    Some(ConfidenceArg::Log) => Confidence::Log,
                    None => d.confidence,
                },
                eps: setf(d.eps, a.eps),
                solver: match a.solver {
                    Some(SolverArg::Cg) => Solver::Cg,
                    Some(SolverArg::Cholesky) => Solver::Cholesky,
                    None => d.solver,
                },
                cg_steps: set(d.cg_steps, a.cg_steps),
                init_std: setf(d.init_std, a.init_std),
                seed: a.seed,
                threads: a.threads,
                patience,
                // The objective options come from a `--params` file.
                ..d
            };
            if !implicit && p.solver == Solver::Cg {
                bail!("--solver cg is for implicit feedback; explicit ALS solves each row exactly (cholesky)");
            }
            if spark {
                // Spark and Java are looked for before any data is read.
                crate::spark::check_params(&p)?;
                let o = engine.spark_options_checked()?;
                return Ok(Trainer::Spark(p.check()?, o, spark_k));
            }
            Trainer::Als(p.check()?)
        }
        Algo::Bpr => {
            let d = BprParams::default();
            Trainer::Bpr(
                BprParams {
                    factors: set(d.factors, a.factors),
                    epochs: set(d.epochs, epochs),
                    learning_rate: setf(d.learning_rate, a.learning_rate),
                    reg: setf(d.reg, a.reg),
                    init_std: setf(d.init_std, a.init_std),
                    seed: a.seed,
                    threads: a.threads,
                    patience,
                }
                .check()?,
            )
        }
    })
}

/// The list head the flags ask for: by default one for a rating model
/// whose algorithm was not chosen (`--algo` picks one pure algorithm), and
/// only ever for rating models trained natively.
pub(super) fn list_head(
    a: &AlgoArgs,
    trainer: &Trainer,
    engine: &EngineArgs,
) -> Result<Option<Trainer>> {
    let on_ratings = !trainer.implicit();
    let spark = engine.engine == EngineArg::Spark;
    match a.list_head {
        Some(ListHeadArg::None) => Ok(None),
        Some(ListHeadArg::Als) if !on_ratings => {
            bail!("--list-head applies to models trained on ratings; this run trains implicit feedback, whose model ranks by itself")
        }
        Some(ListHeadArg::Als) if spark => {
            bail!("--list-head is trained natively; --engine spark trains ALS alone (add --list-head none)")
        }
        Some(ListHeadArg::Als) => Ok(Some(crate::engine::heads::list_head_trainer(
            a.seed, a.threads,
        )?)),
        None if on_ratings && a.algo.is_none() && !spark => Ok(Some(
            crate::engine::heads::list_head_trainer(a.seed, a.threads)?,
        )),
        None => Ok(None),
    }
}

/// `recsys train`'s flags as one checked pipeline configuration.
pub(super) fn train_config(a: &TrainArgs) -> Result<TrainConfig> {
    if a.engine.engine == EngineArg::Spark && a.validation.is_some() {
        bail!("--engine spark trains ALS (--algo als) without --validation");
    }
    let trainer = match &a.params {
        Some(f) => params_trainer(
            f,
            &a.algo,
            a.epochs,
            a.patience,
            a.positive_threshold,
            &a.engine,
        )?,
        None => trainer(
            &a.algo,
            a.epochs,
            a.patience,
            a.positive_threshold,
            &a.engine,
            a.eval_k.first().copied().unwrap_or(10),
        )?,
    };
    if let Some(v) = a.validation {
        if !(v > 0.0 && v < 1.0) {
            bail!("--validation {v}: must be strictly between 0 and 1");
        }
    }
    if a.patience.is_some() && a.validation.is_none() {
        bail!(
            "--patience needs --validation F (a held-out fraction of the training data to watch)"
        );
    }
    if a.eval_k.contains(&0) {
        bail!("--eval-k: cut-offs must be ≥ 1");
    }
    if a.relevant_min.is_some() && trainer.implicit() {
        bail!("--relevant-min applies to models trained on ratings; for implicit feedback use --positive-threshold");
    }
    if a.relevant_min.is_some() && a.test.is_empty() && a.split.is_none() {
        bail!(
            "--relevant-min sets the relevant items of the test side: give --test FILE or --split"
        );
    }
    let mut load = a.load.options();
    load.format = load.format.or(a.format);
    load.min_user_count = a.min_user_count;
    load.min_item_count = a.min_item_count;
    Ok(TrainConfig {
        sources: if a.data.is_empty() {
            vec![DEFAULT_DATA.to_string()]
        } else {
            a.data.clone()
        },
        load,
        test: match (a.split, a.test.is_empty()) {
            (Some(spec), _) => TestSide::Split(spec),
            (None, false) => TestSide::Files(a.test.clone()),
            (None, true) => TestSide::None,
        },
        validation: a.validation,
        list_head: list_head(&a.algo, &trainer, &a.engine)?,
        trainer,
        // Tuned parameters are used as they are.
        adapt: a.params.is_none().then_some(SetByUser {
            alpha: a.algo.alpha.is_some(),
            reg: a.algo.reg.is_some(),
            confidence: a.algo.confidence.is_some(),
            eps: a.algo.eps.is_some(),
        }),
        positive_threshold: a.positive_threshold,
        relevant_min: a.relevant_min,
        eval_k: a.eval_k.clone(),
        seed: a.algo.seed,
        out: Some(a.out.clone()),
    })
}

/// The trainer of a parameters file from `recsys tune`. The flags that set
/// parameters cannot go with it: the file sets them all (`-t` sets the
/// threads, which tuning fixes at one per trial).
pub(super) fn params_trainer(
    file: &std::path::Path,
    a: &AlgoArgs,
    epochs: Option<usize>,
    patience: Option<usize>,
    positive_threshold: Option<f32>,
    engine: &EngineArgs,
) -> Result<Trainer> {
    let mut set = flags_set(a);
    let mut on = |v: bool, name: &'static str| {
        if v {
            set.push(name);
        }
    };
    on(a.algo.is_some(), "--algo");
    on(a.factors.is_some(), "--factors");
    on(a.reg.is_some(), "--reg");
    on(a.init_std.is_some(), "--init-std");
    on(epochs.is_some(), "--epochs");
    on(patience.is_some(), "--patience");
    on(engine.engine == EngineArg::Spark, "--engine spark");
    if let Some(flag) = set.first() {
        bail!(
            "{flag} cannot go with --params {}: the file sets every parameter",
            file.display()
        );
    }
    let best = crate::engine::tune::BestParams::load(file)?;
    let t = best
        .trainer(a.threads)
        .map_err(|e| anyhow::anyhow!("--params {}: {e}", file.display()))?;
    let implicit = a.implicit || positive_threshold.is_some();
    if implicit != t.implicit() {
        bail!(
            "--params {}: its parameters ({}) are for {}; this run is on {}",
            file.display(),
            best.algorithm,
            if t.implicit() {
                "implicit feedback"
            } else {
                "ratings"
            },
            if implicit {
                "implicit feedback"
            } else {
                "ratings (add --implicit for implicit feedback)"
            }
        );
    }
    Ok(t)
}

/// The help text of a flag whose default depends on the algorithm, built
/// from the params types so `--help` cannot drift from the library.
pub(super) fn default_help(flag: &str) -> String {
    let (s, ai, ar, b) = (
        SgdParams::default(),
        AlsParams::default(),
        AlsParams::explicit(),
        BprParams::default(),
    );
    let each = |what: &str,
                sgd: Option<String>,
                imp: Option<String>,
                rat: Option<String>,
                bpr: Option<String>| {
        let parts: Vec<String> = [
            ("sgd", sgd),
            ("implicit ALS", imp),
            ("ALS on ratings", rat),
            ("bpr", bpr),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| format!("{n} {v}")))
        .collect();
        format!("{what} [default: {}]", parts.join(", "))
    };
    let o = |v: &dyn ToString| Some(v.to_string());
    match flag {
        "factors" => each(
            "Latent factors k",
            o(&s.factors),
            o(&ai.factors),
            o(&ar.factors),
            o(&b.factors),
        ),
        "epochs" => each(
            "Epochs (ALS: sweeps)",
            o(&s.epochs),
            o(&ai.epochs),
            o(&ar.epochs),
            o(&b.epochs),
        ),
        "learning_rate" => each(
            "Step size of SGD and BPR",
            o(&s.learning_rate),
            None,
            None,
            o(&b.learning_rate),
        ),
        "lr_decay" => each(
            "SGD step size multiplier per epoch",
            o(&s.lr_decay),
            None,
            None,
            None,
        ),
        "reg" => each(
            "L2 regularization of the factors (implicit ALS: adapted to the data unless set)",
            o(&s.reg_factors),
            o(&ai.reg),
            o(&ar.reg),
            o(&b.reg),
        ),
        "reg_bias" => each(
            "SGD L2 regularization of the biases",
            o(&s.reg_bias),
            None,
            None,
            None,
        ),
        "lead_factors" => each(
            "SGD: factors trained alone in the first epoch (0: all)",
            o(&s.lead_factors),
            None,
            None,
            None,
        ),
        "init_std" => each(
            "Std-dev of the initial factors",
            o(&s.init_std),
            o(&ai.init_std),
            o(&ar.init_std),
            o(&b.init_std),
        ),
        "alpha" => each(
            "Implicit ALS confidence scale α (adapted to the data unless set)",
            None,
            o(&ai.alpha),
            None,
            None,
        ),
        "eps" => each("ε of the log confidence", None, o(&ai.eps), None, None),
        "cg_steps" => each(
            "Conjugate-gradient steps per row and sweep",
            None,
            o(&ai.cg_steps),
            None,
            None,
        ),
        "confidence" => each(
            "Implicit ALS confidence: linear (1 + αr) or log (1 + α ln(1 + r/ε))",
            None,
            o(&format!("{:?}", ai.confidence).to_lowercase()),
            None,
            None,
        ),
        "solver" => each(
            "ALS solver: cg (conjugate gradient, implicit only) or cholesky (exact)",
            None,
            o(&format!("{:?}", ai.solver).to_lowercase()),
            o(&format!("{:?}", ar.solver).to_lowercase()),
            None,
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Cli, Command};
    use super::*;
    use clap::{CommandFactory, Parser};

    fn train_args(extra: &[&str]) -> TrainArgs {
        let mut argv = vec!["recsys", "train"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Train(a) => a,
            _ => unreachable!(),
        }
    }

    fn params(t: &Trainer) -> serde_json::Value {
        t.params_json()
    }

    #[test]
    fn no_flags_give_the_library_defaults_for_every_algorithm() {
        let cases: [(&[&str], serde_json::Value); 4] = [
            (&[], serde_json::to_value(SgdParams::default()).unwrap()),
            (
                &["--implicit"],
                serde_json::to_value(AlsParams::default()).unwrap(),
            ),
            (
                &["--algo", "als"],
                serde_json::to_value(AlsParams::explicit()).unwrap(),
            ),
            (
                &["--algo", "bpr"],
                serde_json::to_value(BprParams::default()).unwrap(),
            ),
        ];
        for (flags, want) in cases {
            let c = train_config(&train_args(flags)).unwrap();
            assert_eq!(params(&c.trainer), want, "recsys train {flags:?}");
        }
    }

    #[test]
    fn the_help_prints_the_library_defaults() {
        let help = Cli::command()
            .find_subcommand_mut("train")
            .unwrap()
            .render_long_help()
            .to_string();
        let (s, ai, ar, b) = (
            SgdParams::default(),
            AlsParams::default(),
            AlsParams::explicit(),
            BprParams::default(),
        );
        for want in [
            format!(
                "sgd {}, implicit ALS {}, ALS on ratings {}, bpr {}",
                s.factors, ai.factors, ar.factors, b.factors
            ),
            format!(
                "sgd {}, implicit ALS {}, ALS on ratings {}, bpr {}",
                s.epochs, ai.epochs, ar.epochs, b.epochs
            ),
            format!("sgd {}, bpr {}", s.learning_rate, b.learning_rate),
            format!(
                "sgd {}, implicit ALS {}, ALS on ratings {}, bpr {}",
                s.reg_factors, ai.reg, ar.reg, b.reg
            ),
            format!("implicit ALS {}]", ai.alpha),
        ] {
            assert!(help.contains(&want), "--help lacks {want:?}:\n{help}");
        }
    }

    #[test]
    fn a_flag_of_another_algorithm_is_an_error_naming_it() {
        for (flags, want) in [
            (
                &["--alpha", "2"][..],
                "--alpha applies to implicit ALS only; this run trains sgd",
            ),
            (
                &["--algo", "als", "--lr-decay", "0.5"],
                "--lr-decay applies to sgd only",
            ),
            (
                &["--implicit", "--learning-rate", "0.1"],
                "--learning-rate applies to sgd and bpr only",
            ),
            (
                &["--algo", "bpr", "--solver", "cg"],
                "--solver applies to als only",
            ),
            (
                &["--algo", "als", "--cg-steps", "3"],
                "--cg-steps applies to implicit ALS only; this run trains ALS on ratings",
            ),
        ] {
            let e = train_config(&train_args(flags)).unwrap_err().to_string();
            assert!(e.contains(want), "{flags:?}: {e}");
        }
        // The flags of the algorithm chosen are accepted.
        train_config(&train_args(&[
            "--implicit",
            "--alpha",
            "2",
            "--cg-steps",
            "3",
        ]))
        .unwrap();
        train_config(&train_args(&["--lr-decay", "0.8", "--reg-bias", "0.02"])).unwrap();
    }
}
