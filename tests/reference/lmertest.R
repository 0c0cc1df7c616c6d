# Reference t-tests for fixed effects from R's lmerTest (Satterthwaite df).
#
# Usage:
#   Rscript tests/reference/lmertest.R INPUT_DIR OUT_DIR
#
# INPUT_DIR holds the cleaned CSVs written by `python -m lmmlib.datasets export DIR`
# (pig.csv, nepal.csv, soybean.csv, soybean_disks.csv). The lme4 example data
# (sleepstudy, Penicillin, Dyestuff2) are embedded in their fixtures
# ("dataset": "inline"). Factors are set up as in lme4_goldens.R.
#
# One JSON file per model holds coef(summary(m)) of the lmerTest fit (its
# default: Satterthwaite df), plus the pieces lmerTest computes them from:
# theta, sigma, vcov_varpar (2 H^-1, H the numDeriv Hessian of the REML
# criterion or deviance in (theta, sigma)) and the diagonal of the Jacobian of
# vcov(beta) with respect to each of (theta, sigma).
#
# The main entries come from a fit with tight nloptwrap tolerances (as the
# *_tight values of lme4_goldens.R): with lme4's default tolerances theta can
# stop 6e-4 (relative) short of the optimum (nepal_slope), which moves the SEs
# by 4e-5 and small p-values by several per cent. The default fit's table is
# kept as coef_default (with theta_default, sigma_default) for comparison.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest r-cran-jsonlite

suppressPackageStartupMessages(library(lmerTest))

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

args <- script_args("Rscript lmertest.R INPUT_DIR OUT_DIR")
out_dir <- args$out_dir

# ---------------------------------------------------------------------------
# Data (factor set-up and derived columns: common.R)

data_sets <- c(
  course_data(args$in_dir, c("pig", "nepal", "soybean", "soybean_disks")),
  list(sleepstudy = lme4::sleepstudy, Penicillin = lme4::Penicillin,
       Dyestuff2 = lme4::Dyestuff2)
)

# ---------------------------------------------------------------------------
# Models: name, formula, REML, data set

models <- list(
  list("nepal_lit", "arm ~ age + lit + (1|id)", TRUE, "nepal"),
  list("nepal_slope", "arm ~ ageC + (ageC|id)", TRUE, "nepal"),
  list("pig_reml", "weight ~ weeks + (1|id)", TRUE, "pig"),
  list("sleepstudy_reml", "Reaction ~ Days + (Days|Subject)", TRUE, "sleepstudy"),
  list("sleepstudy_ml", "Reaction ~ Days + (Days|Subject)", FALSE, "sleepstudy"),
  list("penicillin", "diameter ~ 1 + (1|plate) + (1|sample)", TRUE, "Penicillin"),
  list("soybean_reml", "mAqE ~ ID + Date_num + I(Date_num^2) + (1|plot_number_year)",
       TRUE, "soybean"),
  list("disks_reml",
       "AqE ~ ID + days + I(days^2) + Precip + Precip_7day + (1|plot_number) + (1|disk)",
       TRUE, "soybean_disks"),
  # boundary fit: theta = 0 (lmerTest still computes the df)
  list("dyestuff2", "Yield ~ 1 + (1|Batch)", TRUE, "Dyestuff2")
)

# ---------------------------------------------------------------------------
# Helpers

fit_model <- function(form, reml, data, control = lmerControl()) {
  lmerTest::lmer(form, data = data, REML = reml, control = control)
}

coef_fields <- function(tab) {
  list(
    names = I(rownames(tab)),
    estimate = I(unname(tab[, "Estimate"])),
    se = I(unname(tab[, "Std. Error"])),
    df = I(unname(tab[, "df"])),
    t = I(unname(tab[, "t value"])),
    p = I(unname(tab[, "Pr(>|t|)"]))
  )
}

# ---------------------------------------------------------------------------
# Fit and write

versions <- version_fields("lmerTest", "numDeriv")

for (spec in models) {
  name <- spec[[1]]; formula_str <- spec[[2]]; reml <- spec[[3]]; ds <- spec[[4]]
  data <- data_sets[[ds]]
  form <- as.formula(formula_str)
  fit <- with_notes(fit_model(form, reml, data, control = LMER_TIGHT))
  m <- fit$value
  m_default <- with_notes(fit_model(form, reml, data))$value
  tab <- coef(summary(m))
  out <- c(list(name = name, formula = formula_str, reml = reml),
           data_fields(ds, data, form, inline_form = form))
  out$nobs <- nobs(m)
  out$coef <- coef_fields(tab)
  out$theta <- I(unname(getME(m, "theta")))
  out$sigma <- sigma(m)
  out$singular <- isSingular(m)
  out$vcov_varpar <- rows_of(m@vcov_varpar)
  out$jacobian_diag <- lapply(m@Jac_list, function(J) I(diag(J)))
  out$warnings <- I(fit$notes)
  out$coef_default <- coef_fields(coef(summary(m_default)))
  out$theta_default <- I(unname(getME(m_default, "theta")))
  out$sigma_default <- sigma(m_default)
  out <- c(out, versions)
  write_fixture_json(out, out_dir, name)
  cat(sprintf("%-16s df: %s\n", name,
              paste(format(tab[, "df"], digits = 8), collapse = " ")))
}

index <- c(list(models = I(vapply(models, `[[`, "", 1))), versions)
write_index_json(index, out_dir)
