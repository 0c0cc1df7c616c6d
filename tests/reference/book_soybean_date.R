# lme4 values for the soybean chapter's date and field-location models: one
# JSON file, book/soybean_date.json, one entry per model (ML fits, tight control).
#
# Usage:
#   Rscript tests/reference/book_soybean_date.R IN_DIR OUT_DIR
#
# IN_DIR holds the course CSVs (python -m lmmlib.datasets export IN_DIR).
# Entries: full_date (time trend, weather, plot-year and date random intercepts,
# crossed), plot_date (the same without the weather), location_date (full_date
# plus a random intercept of the plot number, in which the plot-years are nested).
# Fields per entry: formula, reml, deviance (-2 logLik), aic, npar, theta,
# beta and se (names, values), varcorr (group, sdcor).
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

paths <- script_args("Rscript book_soybean_date.R IN_DIR OUT_DIR")
soy <- course_data(paths$in_dir, "soybean")$soybean
soy$Datef <- as_factor(soy$Date)
soy$plot_number <- as_factor(soy$plot_number)

entry <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  fe <- fixef(m)
  list(formula = paste(deparse(formula(m)), collapse = ""),
       reml = isREML(m), deviance = -2 * as.numeric(logLik(m)), aic = AIC(m),
       npar = attr(logLik(m), "df"), theta = I(unname(getME(m, "theta"))),
       beta = list(names = I(names(fe)), values = I(unname(fe))),
       se = list(names = I(names(fe)), values = I(unname(sqrt(diag(as.matrix(vcov(m))))))),
       varcorr = list(group = I(vc$grp), sdcor = I(vc$sdcor)))
}

time_weather <- "mAqE ~ ID + Date_num + I(Date_num^2) + Precip_cum + Precip_7day + Ta_7day + Fsd_7day"
out <- list()
out$full_date <- entry(lmer(as.formula(paste(time_weather,
                                             "+ (1 | plot_number_year) + (1 | Datef)")),
                            data = soy, REML = FALSE, control = LMER_TIGHT))
out$plot_date <- entry(lmer(mAqE ~ ID + Date_num + I(Date_num^2) + (1 | plot_number_year) +
                              (1 | Datef), data = soy, REML = FALSE, control = LMER_TIGHT))
out$location_date <- entry(lmer(as.formula(paste(time_weather,
                                                 "+ (1 | plot_number) + (1 | plot_number_year) + (1 | Datef)")),
                                data = soy, REML = FALSE, control = LMER_TIGHT))
out$versions <- version_fields()
write_json(out, file.path(paths$out_dir, "soybean_date.json"), auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
