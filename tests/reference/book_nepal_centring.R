# lme4 values for the Nepal chapter's within- and between-child age effects:
# one JSON file, book/nepal_centring.json (REML fits, tight control).
#
# Usage:
#   Rscript tests/reference/book_nepal_centring.R IN_DIR OUT_DIR
#
# IN_DIR holds the course CSVs (python -m lmmlib.datasets export IN_DIR).
# age_between is the child's mean age over its visits in the cleaned data,
# age_within = age - age_between. Entries: within_between
# (arm ~ age_within + age_between + (1 | id)) and within_between_lit (the same
# with lit). Fields: formula, reml, deviance (REML criterion), beta and se
# (names, values), varcorr (group, sdcor).
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

paths <- script_args("Rscript book_nepal_centring.R IN_DIR OUT_DIR")
nep <- course_data(paths$in_dir, "nepal")$nepal
nep$age_between <- ave(nep$age, nep$id)
nep$age_within <- nep$age - nep$age_between

entry <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  fe <- fixef(m)
  list(formula = paste(deparse(formula(m)), collapse = ""),
       reml = isREML(m), deviance = as.numeric(REMLcrit(m)),
       beta = list(names = I(names(fe)), values = I(unname(fe))),
       se = list(names = I(names(fe)), values = I(unname(sqrt(diag(as.matrix(vcov(m))))))),
       varcorr = list(group = I(vc$grp), sdcor = I(vc$sdcor)))
}

out <- list()
out$within_between <- entry(lmer(arm ~ age_within + age_between + (1 | id), data = nep,
                                 control = LMER_TIGHT))
out$within_between_lit <- entry(lmer(arm ~ age_within + age_between + lit + (1 | id),
                                     data = nep, control = LMER_TIGHT))
out$versions <- version_fields()
write_json(out, file.path(paths$out_dir, "nepal_centring.json"), auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
