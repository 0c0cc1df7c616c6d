# Profile-likelihood confidence intervals of GLMM fits from R's lme4
# (confint(m, method = "profile")), one JSON fixture per model.
#
# Usage:
#   Rscript tests/reference/lme4_glmer_confint.R OUT_DIR
#
# Fields: name, formula (R), python_formula (lmmlib), family, weights (column
# name or null), data (inline), deviance (-2 logLik), theta, beta, and
# profile: rows of (par, lower, upper) at level 0.95 for .sig01, ... and the
# fixed effects, and wald: the same from method = "Wald" (NA for variance
# parameters, as lme4 gives).
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

out_dir <- script_args("Rscript lme4_glmer_confint.R OUT_DIR", names = "out_dir")$out_dir

TIGHT <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-10,
                      optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0,
                                     maxeval = 1e5))

interval_rows <- function(ci) {
  data.frame(par = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
}

# `weights` names lmmlib's prior-weights column (the trials of a proportion
# response); R's formula carries them itself through cbind(successes, failures)
case <- function(name, form, py_formula, data, family, weights = NULL) {
  m <- glmer(as.formula(form), data = data, family = family, control = TIGHT)
  prof <- suppressWarnings(confint(m, method = "profile", level = 0.95))
  wald <- confint(m, method = "Wald", level = 0.95)
  fe <- fixef(m)
  out <- c(list(name = name, formula = form, python_formula = py_formula, family = family,
                weights = weights, dataset = "inline", data = data,
                deviance = -2 * as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
                beta = list(names = I(names(fe)), values = I(unname(fe))),
                profile = interval_rows(prof), wald = interval_rows(wald)),
           version_fields())
  write_fixture_json(out, out_dir, name)
  name
}

cb <- cbpp
cb$herd <- as.character(cb$herd)
cb$period <- as.character(cb$period)
cb$prop <- cb$incidence / cb$size

counts <- local({
  rng_state <- set.seed(20261202)
  g <- rep(1:20, each = 10)
  x <- round(rnorm(200), 6)
  y <- rpois(200, exp(0.5 + 0.3 * x + rnorm(20, sd = 0.5)[g]))
  data.frame(y = y, x = x, g = sprintf("g%02d", g))
})

index <- c(
  case("cbpp", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
       "prop ~ period + (1 | herd)", cb, "binomial", weights = "size"),
  case("counts", "y ~ x + (1 | g)", "y ~ x + (1 | g)", counts, "poisson")
)
write_fixture_json(c(list(models = I(index)), version_fields()), out_dir, "index")
