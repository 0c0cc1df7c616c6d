# Reference results of RLRsim's exact restricted likelihood-ratio test, one JSON
# file per test case.
#
# Usage:
#   Rscript tests/reference/rlrsim.R INPUT_DIR OUT_DIR
#
# INPUT_DIR holds the cleaned CSVs written by `python -m lmmlib.datasets export DIR`
# (pig.csv, nepal.csv, pulp.csv). The lme4 example data (Dyestuff, Dyestuff2,
# sleepstudy) come from lme4 itself. Data preparation follows lme4_goldens.R.
#
# For each case exactRLRT() is run with NSIM simulated values and a fixed seed.
# The JSON keeps the observed statistic, the p-value, the eigenvalues mu that
# drive the null distribution (as RLRTSim computes them) and a summary of the
# simulated null sample: quantiles, mean and share of exact zeros.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite r-cran-rlrsim

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))
suppressPackageStartupMessages(library(RLRsim))

args <- script_args("Rscript rlrsim.R INPUT_DIR OUT_DIR")
out_dir <- args$out_dir

NSIM <- 100000L
PROBS <- c(0.5, 0.75, 0.9, 0.95, 0.99)

data_sets <- c(course_data(args$in_dir, c("pig", "nepal", "pulp")),
               list(Dyestuff = lme4::Dyestuff, Dyestuff2 = lme4::Dyestuff2,
                    sleepstudy = lme4::sleepstudy))

# name, formula of m, REML, dataset, seed, formulas of mA and m0 (or NA)
cases <- list(
  list("pulp", "bright ~ 1 + (1|operator)", TRUE, "pulp", 5281L, NA, NA),
  list("pulp_ml", "bright ~ 1 + (1|operator)", FALSE, "pulp", 5282L, NA, NA),
  list("nepal_ri", "arm ~ age + (1|id)", TRUE, "nepal", 5283L, NA, NA),
  list("pig", "weight ~ weeks + (1|id)", TRUE, "pig", 5284L, NA, NA),
  list("dyestuff", "Yield ~ 1 + (1|Batch)", TRUE, "Dyestuff", 5285L, NA, NA),
  list("dyestuff2", "Yield ~ 1 + (1|Batch)", TRUE, "Dyestuff2", 5286L, NA, NA),
  list("sleepstudy_slope", "Reaction ~ Days + (0+Days|Subject)", TRUE, "sleepstudy", 5287L,
       "Reaction ~ Days + (1|Subject) + (0+Days|Subject)", "Reaction ~ Days + (1|Subject)")
)

# The eigenvalues exactly as RLRTSim computes them (scalar term: Sigma = I).
eigenvalues <- function(m) {
  X <- getME(m, "X")
  Z <- as.matrix(getME(m, "Z"))
  sort((svd(t(qr.resid(qr(X), Z)), nu = 0, nv = 0)$d)^2, decreasing = TRUE)
}

run_case <- function(cs) {
  name <- cs[[1]]
  data <- data_sets[[cs[[4]]]]
  m <- lmer(as.formula(cs[[2]]), data = data, REML = cs[[3]])
  three <- !is.na(cs[[6]])
  mA <- if (three) lmer(as.formula(cs[[6]]), data = data) else NULL
  m0 <- if (three) lmer(as.formula(cs[[7]]), data = data) else NULL
  messages <- character(0)
  warns <- character(0)
  elapsed <- system.time(
    test <- withCallingHandlers(
      exactRLRT(m, mA = mA, m0 = m0, seed = cs[[5]], nsim = NSIM),
      message = function(e) {
        messages <<- c(messages, conditionMessage(e))
        invokeRestart("muffleMessage")
      },
      warning = function(w) {
        warns <<- c(warns, conditionMessage(w))
        invokeRestart("muffleWarning")
      }
    )
  )[["elapsed"]]
  s <- test$sample
  X <- getME(m, "X")
  mu_raw <- eigenvalues(m)
  out <- c(list(
    name = name, formula = cs[[2]], reml = cs[[3]], dataset = cs[[4]],
    formula_mA = if (three) cs[[6]] else NULL,
    formula_m0 = if (three) cs[[7]] else NULL,
    nobs = nrow(X), p = ncol(X), K = ncol(getME(m, "Z")),
    statistic = unname(test$statistic), p_value = test$p.value,
    reml_criterion = if (three) NULL else REMLcrit(m),
    reml_criterion_mA = if (three) REMLcrit(mA) else NULL,
    reml_criterion_m0 = if (three) REMLcrit(m0) else NULL,
    mu_raw = mu_raw, mu = mu_raw / max(mu_raw),
    seed = cs[[5]], nsim = if (is.null(s)) 0L else length(s),
    probs = PROBS,
    quantiles = if (is.null(s)) NULL else unname(quantile(s, PROBS, type = 7)),
    mean = if (is.null(s)) NULL else mean(s),
    share_zero = if (is.null(s)) NULL else mean(s == 0),
    messages = messages, warnings = warns, seconds = elapsed
  ), version_fields("RLRsim"))
  write_fixture_json(out, out_dir, name)
  cat(sprintf("%-18s RLRT = %.6f  p = %.5f  zeros = %s  (%.2f s)\n", name,
              out$statistic, out$p_value,
              if (is.null(s)) "-" else format(out$share_zero), elapsed))
}

for (cs in cases) run_case(cs)
