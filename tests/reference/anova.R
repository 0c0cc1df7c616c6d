# Reference values for lmmlib.anova and lmmlib.aov, written as JSON fixtures.
#
# Usage:
#   Rscript tests/reference/anova.R INPUT_DIR OUT_DIR
#
# INPUT_DIR holds the cleaned CSVs written by `python -m lmmlib.datasets export DIR`
# (pulp.csv, nepal.csv, soybean.csv).  OUT_DIR is normally
# tests/reference/fixtures/anova.  Files written:
#
#   anova_pulp.json      anova(lmer ML, lm): the STAT 528 pulp LRT
#   anova_nepal.json     anova(ri, slope) with ML fits, and the same pair fitted
#                        by REML (lme4 refits them with ML and says so)
#   drop_level_soybean.json
#                        the genotype screen: for every ID column of the
#                        treatment-coded model matrix (reference aRC), the ML fit
#                        without that column and AIC(full) - AIC(reduced)
#   aov_tables.json      summary(aov()) tables with sum contrasts: pulp one-way,
#                        Nepal sex * lit (unbalanced, sequential sums of squares)
#
# Requires: r-cran-lme4, r-cran-jsonlite (R 4.2.2, lme4 1.1-31 were used).

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

args <- script_args("Rscript anova.R INPUT_DIR OUT_DIR")
out_dir <- args$out_dir

versions <- version_fields()
write_fixture <- function(x, name) {
  write_json(c(x, versions), file.path(out_dir, paste0(name, ".json")),
             digits = NA, auto_unbox = TRUE, pretty = TRUE, null = "null", na = "null")
}

# anova() table as a list of columns, with the row names and the messages R printed
anova_fixture <- function(expr) {
  tab <- with_notes(expr, warnings = FALSE)
  df <- as.data.frame(tab$value)
  list(rows = rownames(df), columns = names(df),
       values = lapply(df, function(col) I(unname(col))), messages = tab$notes)
}

course <- course_data(args$in_dir, c("pulp", "nepal", "soybean"))
pulp <- course$pulp
nepal <- course$nepal
soybean <- course$soybean

# --- pulp: lm(bright ~ 1) against the ML random-intercept model (seed 002) ---
nullmod <- lm(bright ~ 1, pulp)
smod <- lmer(bright ~ 1 + (1 | operator), pulp, REML = FALSE)
write_fixture(list(models = list(smod = "bright ~ 1 + (1 | operator)", nullmod = "bright ~ 1"),
                   table = anova_fixture(anova(smod, nullmod)),
                   lrt = as.numeric(2 * (logLik(smod) - logLik(nullmod)))),
              "anova_pulp")

# --- Nepal: random intercept vs correlated random slope (seed 001) ---
ri <- lmer(arm ~ ageC + (1 | id), nepal, REML = FALSE)
slope <- lmer(arm ~ ageC + (ageC | id), nepal, REML = FALSE)
ri_reml <- lmer(arm ~ ageC + (1 | id), nepal)
slope_reml <- lmer(arm ~ ageC + (ageC | id), nepal)
write_fixture(list(models = list(ri = "arm ~ ageC + (1 | id)", slope = "arm ~ ageC + (ageC | id)"),
                   ml = anova_fixture(anova(ri, slope)),
                   reml_refitted = anova_fixture(anova(ri_reml, slope_reml)),
                   reml_norefit = anova_fixture(anova(ri_reml, slope_reml, refit = FALSE))),
              "anova_nepal")

# --- soybean genotype screen (the STAT 528 loop, on the plot-date means) ---
fe <- mAqE ~ ID + Date_num + I(Date_num^2) + Precip_cum + Precip_7day + Ta_7day + Fsd_7day
full <- lmer(update(fe, . ~ . + (1 | plot_number_year)), soybean, REML = FALSE)
M <- model.matrix(fe, soybean)
id_cols <- grep("^ID", colnames(M))
screen <- vapply(id_cols, function(j) {
  M1 <- M[, -j]
  red <- lmer(mAqE ~ -1 + M1 + (1 | plot_number_year), data = soybean, REML = FALSE)
  c(AIC(red), AIC(full) - AIC(red))
}, numeric(2))
write_fixture(list(formula = paste(deparse(fe), "+ (1 | plot_number_year)"),
                   reference = levels(soybean$ID)[1],
                   aic_full = AIC(full),
                   columns = I(colnames(M)[id_cols]),
                   levels = I(sub("^ID", "", colnames(M)[id_cols])),
                   aic_reduced = I(screen[1, ]),
                   delta_aic = I(screen[2, ])),
              "drop_level_soybean")

# --- aov tables with sum contrasts ---
op <- options(contrasts = c("contr.sum", "contr.poly"))
aov_fixture <- function(fit) {
  tab <- summary(fit)[[1]]
  list(rows = trimws(rownames(tab)), columns = names(tab),
       values = lapply(as.data.frame(tab), function(col) I(unname(col))),
       coef = as.list(coef(fit)))
}
nepal$sexf <- factor(nepal$sex)
nepal$litf <- factor(nepal$lit)
write_fixture(list(pulp = aov_fixture(aov(bright ~ operator, pulp)),
                   nepal_sex_lit = aov_fixture(aov(arm ~ sexf * litf, nepal)),
                   nepal_lit_age = aov_fixture(aov(arm ~ litf + age, nepal))),
              "aov_tables")
options(op)
