import type { ImgHTMLAttributes } from "react";
import { useImageSource } from "../hooks";

// ApiImage is an <img> of an API path (a thumbnail), fetched with this
// tab's token. Until its bytes arrive it has no src, so it shows as its
// box (and reports complete with no natural size).
export function ApiImage({ src, ...rest }: ImgHTMLAttributes<HTMLImageElement> & { src: string }) {
  const shown = useImageSource(src);
  return <img {...rest} src={shown} />;
}
