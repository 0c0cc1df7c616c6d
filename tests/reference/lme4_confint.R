# Reference profiles and confidence intervals from R's lme4, one JSON per model.
#
# Usage:
#   Rscript tests/reference/lme4_confint.R INPUT_DIR OUT_DIR
#
# INPUT_DIR holds the cleaned CSVs written by `python -m lmmlib.datasets export DIR`
# (pig.csv, nepal.csv, pulp.csv). sleepstudy, Penicillin and Dyestuff2 come from
# the lme4 package.
# Factors are set up as in lme4_goldens.R (levels sorted in C-locale order).
#
# For every model OUT_DIR/<name>.json holds
#   confint_profile: confint(m, method = "profile")   (rows, lower, upper)
#   confint_wald:    confint(m, method = "Wald")      (rows, lower, upper; NA -> null)
#   profile:         as.data.frame(profile(m)): .par, .zeta, .focal (the profiled
#                    parameter's value) and the value of every parameter at each point
#   ml_deviance:     -2 logLik of the ML refit (lme4 profiles the ML deviance, also
#                    for REML fits: devfun2() calls refitML())
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

args <- script_args("Rscript lme4_confint.R INPUT_DIR OUT_DIR")
out_dir <- args$out_dir

data_sets <- c(course_data(args$in_dir, c("pig", "nepal", "pulp")),
               list(sleepstudy = lme4::sleepstudy, Penicillin = lme4::Penicillin,
                    Dyestuff2 = lme4::Dyestuff2))

# name, formula, REML, data set (names as in lme4_goldens.R)
models <- list(
  list("pig_reml", "weight ~ weeks + (1|id)", TRUE, "pig"),
  list("pig_ml", "weight ~ weeks + (1|id)", FALSE, "pig"),
  list("nepal_ri", "arm ~ age + (1|id)", TRUE, "nepal"),
  list("nepal_slope", "arm ~ ageC + (ageC|id)", TRUE, "nepal"),
  list("pulp_reml", "bright ~ 1 + (1|operator)", TRUE, "pulp"),
  list("sleepstudy_reml", "Reaction ~ Days + (Days|Subject)", TRUE, "sleepstudy"),
  # crossed random effects, and a singular fit (theta = 0: the profile starts on the bound)
  list("penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", TRUE, "Penicillin"),
  list("dyestuff2", "Yield ~ 1 + (1|Batch)", TRUE, "Dyestuff2")
)

ci_list <- function(ci) {
  list(rows = I(rownames(ci)), columns = I(colnames(ci)),
       lower = I(unname(ci[, 1])), upper = I(unname(ci[, 2])))
}

profile_list <- function(pr) {
  df <- as.data.frame(pr)
  pars <- setdiff(names(df), c(".zeta", ".par", ".focal"))
  out <- list(par = I(as.character(df$.par)), zeta = I(df$.zeta), focal = I(df$.focal))
  out$values <- lapply(setNames(pars, pars), function(p) I(df[[p]]))
  out$parameters <- I(pars)
  out
}

for (spec in models) {
  name <- spec[[1]]; formula_str <- spec[[2]]; reml <- spec[[3]]; ds <- spec[[4]]
  m <- lmer(as.formula(formula_str), data = data_sets[[ds]], REML = reml)
  seconds <- system.time(prof <- with_notes(profile(m), messages = FALSE))[["elapsed"]]
  pr <- prof$value
  notes <- prof$notes
  out <- c(list(
    name = name, formula = formula_str, reml = reml, dataset = ds,
    ml_deviance = as.numeric(-2 * logLik(refitML(m))),
    confint_profile = ci_list(confint(pr)),
    confint_wald = ci_list(confint(m, method = "Wald")),
    profile = profile_list(pr),
    profile_seconds = seconds,
    profile_warnings = I(unique(notes)),
    profile_warning_count = length(notes)
  ), version_fields())
  write_fixture_json(out, out_dir, name)
  cat(sprintf("%-16s profile %.2f s, %d warnings\n", name, seconds, length(notes)))
  if (length(notes)) print(table(notes))
  print(confint(pr))
}
