# predict(re.form = ) and residuals(type = ) from R's lme4, one JSON fixture each.
#
# Usage:
#   Rscript tests/reference/lme4_predict.R OUT_DIR
#
# penicillin: predict(m, re.form = NULL / ~(1|plate) / ~(1|sample) / NA) at
# lme4's tight fit; sleep_weights: residuals(m, type) of a weighted lmer fit;
# cbpp_probit: residuals(m, type) of a probit glmer fit. Data inline; the
# fitted parameters are stored so that the values can be compared at them.
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

out_dir <- script_args("Rscript lme4_predict.R OUT_DIR", names = "out_dir")$out_dir
TIGHT_G <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-10,
                        optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0,
                                       maxeval = 1e5))

pen <- Penicillin
pen$plate <- as.character(pen$plate)
pen$sample <- as.character(pen$sample)
m <- lmer(diameter ~ 1 + (1 | plate) + (1 | sample), pen, control = LMER_TIGHT)
out <- list(name = "penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)",
            dataset = "inline", data = pen, theta = I(unname(getME(m, "theta"))),
            objective = REMLcrit(m),
            pred_all = I(unname(predict(m))),
            pred_plate = I(unname(predict(m, re.form = ~(1 | plate)))),
            pred_sample = I(unname(predict(m, re.form = ~(1 | sample)))),
            pred_none = I(unname(predict(m, re.form = NA))))
write_fixture_json(c(out, version_fields()), out_dir, "penicillin")

sleep <- sleepstudy
sleep$Subject <- as.character(sleep$Subject)
sleep$w <- 1 + (sleep$Days %% 3) / 2
prior_wt <- sleep$w
m <- lmer(Reaction ~ Days + (Days | Subject), sleep, weights = prior_wt, control = LMER_TIGHT)
types <- c("response", "pearson", "deviance", "working")
res <- setNames(lapply(types, function(t) I(unname(residuals(m, type = t)))), types)
out <- c(list(name = "sleep_weights", formula = "Reaction ~ Days + (Days | Subject)",
              weights = "w", dataset = "inline", data = sleep,
              objective = REMLcrit(m), theta = I(unname(getME(m, "theta")))),
         list(residuals = res))
write_fixture_json(c(out, version_fields()), out_dir, "sleep_weights")

cb <- cbpp
cb$herd <- as.character(cb$herd)
cb$period <- as.character(cb$period)
cb$prop <- cb$incidence / cb$size
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cb,
           family = binomial(link = "probit"), control = TIGHT_G)
res <- setNames(lapply(types, function(t) I(unname(residuals(m, type = t)))), types)
out <- c(list(name = "cbpp_probit",
              formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)",
              dataset = "inline", data = cb, deviance = -2 * as.numeric(logLik(m)),
              theta = I(unname(getME(m, "theta")))), list(residuals = res))
write_fixture_json(c(out, version_fields()), out_dir, "cbpp_probit")
write_fixture_json(c(list(models = I(c("penicillin", "sleep_weights", "cbpp_probit"))),
                     version_fields()), out_dir, "index")
