# lme4 values for the book's appendix pages and the model-checking chapter: the
# singular fits of the troubleshooting page, and the hat values, Cook's
# distances and refits of the diagnostics chapter. One JSON file per page in
# OUT_DIR: troubleshooting.json, diagnostics.json.
#
# Usage:
#   Rscript tests/reference/book_pages.R IN_DIR OUT_DIR
#
# IN_DIR holds the course CSVs (python -m lmmlib.datasets export IN_DIR).
# Fits use tight nloptwrap tolerances (LMER_TIGHT) so that the fixtures are the
# optimum itself; the default fits' messages (the singular-fit note) are kept
# as `notes`.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

paths <- script_args("Rscript book_pages.R IN_DIR OUT_DIR")
data <- course_data(paths$in_dir, c("pig", "nepal", "soybean"))
versions <- version_fields()

fit_fields <- function(form, d, reml = TRUE) {
  default <- with_notes(lmer(form, data = d, REML = reml))
  m <- lmer(form, data = d, REML = reml, control = LMER_TIGHT)
  vc <- as.data.frame(VarCorr(m))
  fe <- fixef(m)
  list(formula = paste(deparse(form), collapse = ""), reml = reml, nobs = nobs(m),
       objective = if (reml) unname(REMLcrit(m)) else unname(deviance(m)),
       theta = I(unname(getME(m, "theta"))), singular = isSingular(m),
       singular_default = isSingular(default$value), notes = I(default$notes),
       beta = list(names = I(names(fe)), values = I(unname(fe))),
       se = I(unname(sqrt(diag(as.matrix(vcov(m)))))),
       varcorr = list(group = I(vc$grp), var1 = I(ifelse(is.na(vc$var1), "", vc$var1)),
                      var2 = I(ifelse(is.na(vc$var2), "", vc$var2)),
                      vcov = I(vc$vcov), sdcor = I(vc$sdcor)))
}

# ---------------------------------------------------------------------------
# Troubleshooting: two singular fits and their simpler neighbours

nep <- data$nepal
nep$sex <- as_factor(nep$sex)
soy <- data$soybean
soy$ID <- as_factor(soy$ID)  # a random factor here: no reference level needed
ts <- list(
  nepal_sex = fit_fields(arm ~ ageC + (1 | id) + (1 | sex), nep),
  nepal_ri = fit_fields(arm ~ ageC + (1 | id), nep),
  soybean_slope = fit_fields(mAqE ~ Date_num + (Date_num | ID), soy),
  soybean_nocorr = fit_fields(mAqE ~ Date_num + (Date_num || ID), soy),
  soybean_int = fit_fields(mAqE ~ Date_num + (1 | ID), soy)
)
ts$soybean_lrt <- 2 * (as.numeric(logLik(lmer(mAqE ~ Date_num + (Date_num | ID), soy,
                                              REML = FALSE, control = LMER_TIGHT))) -
                       as.numeric(logLik(lmer(mAqE ~ Date_num + (1 | ID), soy,
                                              REML = FALSE, control = LMER_TIGHT))))
# the scaling warning lme4 gives for age in seconds
pig <- data$pig
pig$seconds <- pig$weeks * 7 * 24 * 3600
ts$pig_seconds_notes <- I(with_notes(lmer(weight ~ seconds + (1 | id), pig))$notes)
write_fixture_json(c(ts, versions), paths$out_dir, "troubleshooting")

# ---------------------------------------------------------------------------
# Diagnostics: influence of the Nepal random-slope model, the course's refit
# without children 57 and 105, and the pig random-slope model

slope_form <- arm ~ ageC + (ageC | id)
m <- lmer(slope_form, data = nep, control = LMER_TIGHT)
h <- unname(hatvalues(m))
cd <- unname(cooks.distance(m))
dg <- list(
  nepal_slope = fit_fields(slope_form, nep),
  hatvalues = I(h), cooks_distance = I(cd), hat_sum = sum(h),
  id = I(as.integer(as.character(nep$id))),
  nepal_drop_57_105 = fit_fields(slope_form, subset(nep, id != 57 & id != 105)),
  nepal_ri_ml = fit_fields(arm ~ ageC + (1 | id), nep, reml = FALSE),
  pig_slope = fit_fields(weight ~ weeks + (weeks | id), pig)
)
write_fixture_json(c(dg, versions), paths$out_dir, "diagnostics")
