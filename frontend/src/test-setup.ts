import { configure } from "@testing-library/react";

// waitFor and findBy* give up after this long: a bound on a hang, not a
// wait (they return as soon as the page shows what they look for). The
// default, 1 s, is too short for jsdom on a loaded 2-core CI machine.
configure({ asyncUtilTimeout: 15_000 });
