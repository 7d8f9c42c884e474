// A script the demo loads: editing it reloads only the pages that loaded it.
document.documentElement.dataset.appLoaded = "yes";
