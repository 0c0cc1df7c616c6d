# GLMM fits with other families and links from R's lme4, one JSON fixture each:
# binomial with probit and cloglog links, Gamma with log and inverse links,
# negative binomial (glmer.nb, theta estimated) and the nAGQ = 0 fit.
#
# Usage:
#   Rscript tests/reference/lme4_families.R OUT_DIR
#
# Data: lme4's cbpp, and simulated Gamma and negative binomial responses
# (seeded; embedded in the fixtures, "dataset": "inline").
#
# Fields: name, formula (R), python_formula (lmmlib), family, link, weights
# (lmmlib's prior-weights column for a proportion response), nAGQ, data,
# deviance (-2 logLik), theta, beta (names, values), se, nb_theta (glmer.nb).
# Fits use tight optimiser settings (nAGQ = 0: glmerControl() defaults, as its
# single stage is a different criterion).
#
# Requires: apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite

args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
source(file.path(here, "common.R"))

out_dir <- script_args("Rscript lme4_families.R OUT_DIR", names = "out_dir")$out_dir

TIGHT <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-10,
                      optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-12, xtol_rel = 0,
                                     maxeval = 1e5))

cb <- cbpp
cb$herd <- as.character(cb$herd)
cb$period <- as.character(cb$period)
cb$prop <- cb$incidence / cb$size

set.seed(20261202)
g <- rep(1:25, each = 8)
x <- round(rnorm(200), 6)
b <- rnorm(25, sd = 0.4)[g]
pos <- data.frame(y = round(rgamma(200, shape = 4, scale = exp(1 + 0.3 * x + b) / 4), 6),
                  x = x, g = sprintf("g%02d", g))
cnt <- data.frame(y = rnbinom(200, size = 2, mu = exp(0.8 + 0.4 * x + b)), x = x,
                  g = sprintf("g%02d", g))

fields <- function(m, name, form, py_formula, family, link, weights, nagq, data) {
  fe <- fixef(m)
  list(name = name, formula = form, python_formula = py_formula, family = family,
       link = link, weights = weights, nAGQ = nagq, dataset = "inline", data = data,
       deviance = -2 * as.numeric(logLik(m)), theta = I(unname(getME(m, "theta"))),
       beta = list(names = I(names(fe)), values = I(unname(fe))),
       se = I(unname(sqrt(diag(as.matrix(vcov(m)))))))
}

index <- character(0)
save <- function(out) {
  write_fixture_json(c(out, version_fields()), out_dir, out$name)
  index <<- c(index, out$name)
}

for (link in c("probit", "cloglog")) {
  form <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
  m <- glmer(as.formula(form), data = cb, family = binomial(link = link), control = TIGHT)
  save(fields(m, paste0("cbpp_", link), form, "prop ~ period + (1 | herd)", "binomial", link,
              "size", 1L, cb))
}
m <- glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), data = cb,
           family = binomial, nAGQ = 0L)
save(fields(m, "cbpp_nagq0", "cbind(incidence, size - incidence) ~ period + (1 | herd)",
            "prop ~ period + (1 | herd)", "binomial", "logit", "size", 0L, cb))
for (link in c("log", "inverse")) {
  m <- glmer(y ~ x + (1 | g), data = pos, family = Gamma(link = link), control = TIGHT)
  save(fields(m, paste0("gamma_", link), "y ~ x + (1 | g)", "y ~ x + (1 | g)", "Gamma", link,
              NULL, 1L, pos))
}
m <- glmer.nb(y ~ x + (1 | g), data = cnt, control = TIGHT)
out <- fields(m, "negbin", "y ~ x + (1 | g)", "y ~ x + (1 | g)", "negative binomial", "log",
              NULL, 1L, cnt)
out$nb_theta <- getME(m, "glmer.nb.theta")
save(out)

write_fixture_json(c(list(models = I(index)), version_fields()), out_dir, "index")
