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

suppressPackageStartupMessages({
  library(lme4)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 2) {
  stop("usage: Rscript lme4_confint.R INPUT_DIR OUT_DIR")
}
in_dir <- args[[1]]
out_dir <- args[[2]]
dir.create(out_dir, showWarnings = FALSE, recursive = TRUE)

as_factor <- function(x) {
  factor(x, levels = sort(unique(x), method = "radix"))
}

read_input <- function(name) {
  path <- file.path(in_dir, paste0(name, ".csv"))
  if (!file.exists(path)) stop("missing input file: ", path)
  read.csv(path, stringsAsFactors = FALSE)
}

pig <- read_input("pig")
pig$id <- as_factor(pig$id)
nepal <- read_input("nepal")
nepal$id <- as_factor(nepal$id)
nepal$ageC <- nepal$age - 36
pulp <- read_input("pulp")
pulp$operator <- as_factor(pulp$operator)

data_sets <- list(pig = pig, nepal = nepal, pulp = pulp, sleepstudy = lme4::sleepstudy,
                  Penicillin = lme4::Penicillin, Dyestuff2 = lme4::Dyestuff2)

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
  notes <- character(0)
  seconds <- system.time(pr <- withCallingHandlers(profile(m), warning = function(w) {
    notes <<- c(notes, conditionMessage(w)); invokeRestart("muffleWarning")
  }))[["elapsed"]]
  out <- list(
    name = name, formula = formula_str, reml = reml, dataset = ds,
    ml_deviance = as.numeric(-2 * logLik(refitML(m))),
    confint_profile = ci_list(confint(pr)),
    confint_wald = ci_list(confint(m, method = "Wald")),
    profile = profile_list(pr),
    profile_seconds = seconds,
    profile_warnings = I(unique(notes)),
    profile_warning_count = length(notes),
    R_version = R.version.string,
    lme4_version = as.character(packageVersion("lme4"))
  )
  json <- toJSON(out, digits = NA, auto_unbox = TRUE, null = "null",
                 na = "null", pretty = TRUE)
  writeLines(json, file.path(out_dir, paste0(name, ".json")))
  cat(sprintf("%-16s profile %.2f s, %d warnings\n", name, seconds, length(notes)))
  if (length(notes)) print(table(notes))
  print(confint(pr))
}
