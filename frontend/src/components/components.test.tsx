import { afterEach, describe, expect, it } from "vitest";
import { cleanup, render, screen } from "@testing-library/react";
import { Bars } from "./Bars";
import { ConfusionHeatmap } from "./Heatmap";
import { LineChart } from "./LineChart";
import { Progress } from "./Progress";
import { Ocean } from "./Ocean";
import { ErrorBanner } from "./ErrorBanner";
import { toApiError } from "../api/errors";

afterEach(cleanup);

describe("Progress", () => {
  const cases = [
    { fraction: 0.426, want: "43" },
    { fraction: -1, want: "0" },
    { fraction: 3, want: "100" },
    { fraction: Number.NaN, want: "0" },
  ];
  for (const c of cases) {
    it(`${c.fraction} -> ${c.want}%`, () => {
      render(<Progress fraction={c.fraction} label="uploading" />);
      const bar = screen.getByRole("progressbar");
      expect(bar.getAttribute("aria-valuenow")).toBe(c.want);
      expect(bar.textContent).toBe(`uploading · ${c.want}%`);
    });
  }
});

describe("Bars", () => {
  it("shows each label with its probability, the top one marked", () => {
    const { container } = render(<Bars items={[{ label: "Mullet", value: 0.9 }, { label: "Catfish", value: 0.075 }]} />);
    const rows = container.querySelectorAll("li");
    expect(rows).toHaveLength(2);
    expect(rows[0].className).toBe("top");
    expect(rows[0].textContent).toBe("Mullet90.0%");
    expect(rows[1].textContent).toBe("Catfish7.5%");
    expect((rows[0].querySelector(".bar-fill") as HTMLElement).style.width).toBe("90%");
  });
});

describe("LineChart", () => {
  it("draws one point per known value of each series", () => {
    const { container } = render(
      <LineChart title="loss" series={[
        { name: "train", color: "red", values: [1.5, 1.0, 0.5] },
        { name: "validation", color: "blue", values: [1.2, undefined, 0.6] },
      ]} />,
    );
    expect(screen.getByRole("img", { name: "loss" })).toBeTruthy();
    expect(container.querySelector("g[data-series=train]")?.getAttribute("data-points")).toBe("3");
    expect(container.querySelector("g[data-series=validation]")?.getAttribute("data-points")).toBe("2");
    expect(container.querySelectorAll("g[data-series=train] circle")).toHaveLength(3);
  });

  it("draws an empty chart without failing", () => {
    const { container } = render(<LineChart title="accuracy" yMax={1} series={[{ name: "train", color: "red", values: [] }]} />);
    expect(container.querySelector("g[data-series=train]")?.getAttribute("data-points")).toBe("0");
  });
});

describe("ConfusionHeatmap", () => {
  it("lays the row-major counts out as true label rows and predicted columns", () => {
    render(<ConfusionHeatmap labels={["Bag", "Shoe"]} counts={[8, 2, 1, 9]} />);
    const cells = screen.getAllByRole("cell");
    expect(cells.map((c) => c.textContent)).toEqual(["8", "2", "1", "9"]);
    expect(cells[1].getAttribute("title")).toBe("Bag → Shoe: 2");
    expect(cells[2].getAttribute("title")).toBe("Shoe → Bag: 1");
  });

  it("says so when the matrix does not match the labels", () => {
    render(<ConfusionHeatmap labels={["Bag", "Shoe"]} counts={[1, 2, 3]} />);
    expect(screen.getByText("No confusion matrix.")).toBeTruthy();
  });
});

describe("Ocean", () => {
  it("draws bubbles and fish, hidden from assistive technology", () => {
    const { container } = render(<Ocean bubbles={7} fish={3} />);
    expect(container.querySelectorAll(".bubble")).toHaveLength(7);
    expect(container.querySelectorAll(".fish")).toHaveLength(3);
    expect(screen.getByTestId("ocean").getAttribute("aria-hidden")).toBe("true");
  });
});

describe("ErrorBanner", () => {
  it("shows the API's message, not its JSON", () => {
    render(<ErrorBanner error={toApiError('{"code":9,"message":"version 1 is aliased as production","details":[]}', 400)} />);
    expect(screen.getByRole("alert").textContent).toBe("Not possible now: version 1 is aliased as production");
  });

  it("renders nothing without an error", () => {
    const { container } = render(<ErrorBanner error={null} />);
    expect(container.innerHTML).toBe("");
  });
});
