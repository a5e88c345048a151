import { configure } from "@testing-library/react";

// The tests share two cores with builds and other test suites: an answer
// that takes a few milliseconds on an idle machine has been seen to take
// over a second there, past Testing Library's default wait of 1 s.
configure({ asyncUtilTimeout: 10_000 });
