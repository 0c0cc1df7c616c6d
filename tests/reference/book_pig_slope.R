# lme4 values for the random-slope section of the pig chapter (book/pig.md):
# weight ~ weeks + (weeks | id) by REML and ML, the random-intercept ML fit it
# is compared with, and the likelihood-ratio statistic of the two ML fits.
# One JSON file, book/pig_slope.json.
#
# Usage:
#   Rscript tests/reference/book_pig_slope.R IN_DIR OUT_DIR
#
# IN_DIR holds the course CSVs (python -m lmmlib.datasets export IN_DIR).
# Fields per fit: formula, reml, deviance (-2 logLik), aic, theta, beta (names,
# values), se, varcorr (rows of as.data.frame(VarCorr)); lrt: statistic and df.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

paths <- script_args("Rscript book_pig_slope.R IN_DIR OUT_DIR")
pig <- course_data(paths$in_dir, "pig")$pig

summary_of <- function(m) {
  fe <- fixef(m)
  list(formula = paste(deparse(formula(m)), collapse = ""),
       reml = isREML(m), deviance = -2 * as.numeric(logLik(m)),
       aic = AIC(m), theta = I(unname(getME(m, "theta"))),
       beta = list(names = I(names(fe)), values = I(unname(fe))),
       se = I(unname(sqrt(diag(as.matrix(vcov(m)))))),
       varcorr = varcorr_rows(m))
}

slope_reml <- lmer(weight ~ weeks + (weeks | id), data = pig, control = LMER_TIGHT)
slope_ml <- lmer(weight ~ weeks + (weeks | id), data = pig, REML = FALSE, control = LMER_TIGHT)
ri_ml <- lmer(weight ~ weeks + (1 | id), data = pig, REML = FALSE, control = LMER_TIGHT)
lrt <- anova(ri_ml, slope_ml)

out <- list(
  slope_reml = summary_of(slope_reml),
  slope_ml = summary_of(slope_ml),
  intercept_ml = summary_of(ri_ml),
  lrt = list(statistic = lrt$Chisq[2], df = lrt$Df[2]),
  versions = version_fields()
)
write_fixture_json(out, paths$out_dir, "pig_slope")
