import { configure } from "@testing-library/react";

// waitFor and findBy* give up after this long: a bound on a hang, not a
// wait (they return as soon as the page shows what they look for). The
// tests share two cores with builds and other suites: an answer that takes
// milliseconds on an idle machine has taken over a second there, past
// Testing Library's default of 1 s.
configure({ asyncUtilTimeout: 15_000 });
